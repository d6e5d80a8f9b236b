"""Tiny data in the official layouts of the generating tasks' datasets, written by the tests.

- `make_shakespeare_folder`: `input.txt` (Tiny Shakespeare's file name), a few thousand characters of
  speeches in its shape (a speaker's name and a colon, lines, a blank line).
- `make_spa_eng_folder`: `spa-eng/spa.txt` (`english<TAB>spanish` per line, as in spa-eng.zip) and,
  with `zipped=True`, only the official `spa-eng.zip` holding it.
"""

import zipfile

SPEAKERS = ("ROMEO", "JULIET", "First Citizen", "MENENIUS")
LINES = ("What light through yonder window breaks?", "We are accounted poor citizens, the patricians good.",
         "O Romeo, Romeo! wherefore art thou Romeo?", "I tell you, friends, most charitable care have the patricians.")

PAIRS = (("Go.", "Ve."), ("Hi.", "Hola."), ("Run!", "¡Corre!"), ("I am cold.", "Tengo frío."),
         ("Where is the cat?", "¿Dónde está el gato?"), ("The cat is black.", "El gato es negro."),
         ("I like the dog.", "Me gusta el perro."), ("We eat bread.", "Comemos pan."),
         ("She is here.", "Ella está aquí."), ("He has a book.", "Él tiene un libro."))
SUBJECTS = (("I", "Yo"), ("You", "Tú"), ("We", "Nosotros"))
VERBS = (("see", "veo", "ves", "vemos"), ("want", "quiero", "quieres", "queremos"))
OBJECTS = (("the house", "la casa"), ("the dog", "el perro"), ("the water", "el agua"), ("a car", "un coche"))


def shakespeare_text(num_speeches=40):
    speeches = []
    for number in range(num_speeches):
        speaker = SPEAKERS[number % len(SPEAKERS)]
        lines = [LINES[(number + offset) % len(LINES)] for offset in range(2)]
        speeches.append(f"{speaker}:\n" + "\n".join(lines) + "\n")
    return "\n".join(speeches)


def make_shakespeare_folder(folder, text=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "input.txt").write_text(shakespeare_text() if text is None else text, encoding="utf-8")
    return folder


def spa_eng_pairs():
    """About 80 distinct pairs: the fixed ones and subject-verb-object sentences."""
    pairs = list(PAIRS)
    for (english_subject, spanish_subject), conjugation in zip(SUBJECTS, range(1, 4)):
        for verb in VERBS:
            for english_object, spanish_object in OBJECTS:
                pairs.append((f"{english_subject} {verb[0]} {english_object}.",
                              f"{spanish_subject} {verb[conjugation]} {spanish_object}."))
    return pairs


def spa_eng_lines(pairs=None):
    return "".join(f"{english}\t{spanish}\n" for english, spanish in (pairs or spa_eng_pairs()))


def make_spa_eng_folder(folder, zipped=False, repeat=3):
    folder.mkdir(parents=True, exist_ok=True)
    content = spa_eng_lines() * repeat  # duplicates, as Tatoeba has: the split keeps each English sentence in one split
    if zipped:
        with zipfile.ZipFile(folder / "spa-eng.zip", "w") as archive:
            archive.writestr("spa-eng/spa.txt", content)
            archive.writestr("spa-eng/_about.txt", "Tatoeba pairs (tiny test copy).\n")
    else:
        (folder / "spa-eng").mkdir(exist_ok=True)
        (folder / "spa-eng" / "spa.txt").write_text(content, encoding="utf-8")
    return folder
