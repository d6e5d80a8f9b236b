"""`pipelines.rest.answer_bytes`: the JSON of TF Serving's answer, written by orjson from the numpy arrays, or by
`json.dumps` where orjson would change what the answer says (NaN/Infinity, which orjson writes as null) or
cannot write the dtype (bfloat16)."""

import json

import numpy as np
import pytest

from pipelines.rest import answer_bytes


def test_row_and_columnar_answers_carry_every_value_and_the_text():
    outputs = {"probabilities": np.random.default_rng(0).random((2, 3, 4)).astype(np.float32),
               "masks": np.array([[[0, 1, 1, 0]] * 3] * 2, np.uint8),
               "class_names": np.array([b"person", b"\xff\xfe"], object), "flags": np.array([True, False])}
    rows = json.loads(answer_bytes(outputs, rows=2))["predictions"]
    assert [row["class_names"] for row in rows] == ["person", {"b64": "//4="}]
    assert [row["flags"] for row in rows] == [True, False] and rows[0]["masks"] == [[0, 1, 1, 0]] * 3
    np.testing.assert_array_equal(np.array([row["probabilities"] for row in rows], np.float32),
                                  outputs["probabilities"])  # every float32 comes back exactly
    columns = json.loads(answer_bytes({"scores": np.arange(3, dtype=np.int64)}))
    assert columns == {"outputs": [0, 1, 2]}


@pytest.mark.parametrize("value, written", [(np.nan, "NaN"), (np.inf, "Infinity"), (-np.inf, "-Infinity")])
def test_nan_and_infinity_are_written_as_tf_serving_writes_them_not_as_null(value, written):
    text = answer_bytes({"scores": np.array([0.5, value], np.float32)}, rows=2).decode()
    assert text == f'{{"predictions":[0.5,{written}]}}'.replace(",", ", ").replace(":", ": ")


def test_a_dtype_orjson_does_not_know_is_still_written():
    import ml_dtypes

    outputs = {"scores": np.array([0.5, 0.25], ml_dtypes.bfloat16)}
    assert json.loads(answer_bytes(outputs, rows=2)) == {"predictions": [0.5, 0.25]}
