"""Tiny labelled-text files for the classifier tasks, written by the tests.

- `make_sms_folder`: `SMSSpamCollection` in SMS Spam's layout (`label<TAB>text`, no header, quotes are plain
  characters), ham and spam messages drawn from templates, with repeats and non-ASCII text.
- `make_csv_folder`: a CSV of your own (header `id,message,topic`, quoted messages holding commas), three classes
  with integer labels (1, 2, 10: sorted as numbers, not as strings).
- `read_sms`: the tests' own reader of SMS Spam's file (for `tests.nlp.learning`).
"""

import csv

import numpy as np

HAM = ("ok see you at {place} later", "sorry i'll call you back from {place}", "are you coming to {place} tonight?",
       "can't wait to see you, love you", "i'm at {place}, where r u?", "did you eat? mum says \"hi\"",
       "¿dónde estás? at {place} with the kids", "haha that's so funny, see you at {place}")
SPAM = ("WINNER!! you have won a £{prize} prize, call 0{number} now to claim", "FREE entry to win £{prize} cash! "
        "text WIN to {number}", "URGENT: your mobile won £{prize}. claim at 0{number} (T&C apply)",
        "Congratulations, you are selected for a £{prize} award, txt CLAIM to {number}")
PLACES = ("home", "the office", "the station", "café nero", "school", "the gym")


def sms_messages(count=120, spam_share=0.25, seed=0):
    """`[(label, text)]`: ham and spam from templates (some messages repeat, as in the real collection)."""
    rng = np.random.default_rng(seed)
    messages = []
    for number in range(count):
        if number % int(round(1 / spam_share)) == 0:
            text = SPAM[rng.integers(len(SPAM))].format(prize=rng.choice([100, 500, 1000, 2000]),
                                                       number=rng.integers(80000, 89999))
            messages.append(("spam", text))
        else:
            messages.append(("ham", HAM[rng.integers(len(HAM))].format(place=PLACES[rng.integers(len(PLACES))])))
    return messages


def make_sms_folder(folder, count=120, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{label}\t{text}\n" for label, text in sms_messages(count, seed=seed)]
    (folder / "SMSSpamCollection").write_text("".join(lines), encoding="utf-8")
    return folder


TOPICS = {1: ("the match ended {a} to {b}, a great goal", "the team won the cup, {a} goals"),
          2: ("stocks fell {a} percent, markets worried", "the bank raised rates by {a}, prices rise"),
          10: ("the new phone has {a} cameras, battery {b} hours", "a chip with {a} cores, faster software")}


def make_csv_folder(folder, per_class=20, seed=0, name="news.csv"):
    """`news.csv`: `id,message,topic`, topic 1 (sport), 2 (economy) or 10 (technology); messages hold commas."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "message", "topic"])
        for number in range(per_class * len(TOPICS)):
            topic = list(TOPICS)[number % len(TOPICS)]
            template = TOPICS[topic][rng.integers(2)]
            writer.writerow([number, template.format(a=rng.integers(1, 9), b=rng.integers(1, 9)), topic])
    return folder


def read_sms(path):
    """`(texts, labels)` of SMS Spam's file, labels 1 for spam: split each line at its first tab."""
    texts, labels = [], []
    for line in open(path, encoding="utf-8").read().splitlines():
        if line:
            label, text = line.split("\t", 1)
            texts.append(text)
            labels.append(int(label == "spam"))
    return texts, np.array(labels)
