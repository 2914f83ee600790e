"""Figures rounded to the precision that reproduces; run facts apart from them (trackfusion.results)."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackfusion import results

finite = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False)  # no figure is subnormal
nested = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)


@given(finite)
def test_a_figure_keeps_six_significant_digits_and_rounding_twice_changes_nothing(x):
    r = results.round_figure(x)
    assert r == results.round_figure(r)
    assert math.isclose(r, x, rel_tol=5e-6, abs_tol=0) or x == 0
    assert len(f"{r:.15g}".lstrip("-").replace(".", "").split("e")[0].strip("0")) <= results.FIGURE_DIGITS


def test_figures_that_differ_only_in_float_noise_round_to_the_same_number():
    # seen between two machines: the same run, the 8th digit apart
    assert results.round_figure(181.48405) == results.round_figure(181.484049) == 181.484
    assert results.round_figure(0.6450157916780634) == results.round_figure(0.6450158584561337)


@given(nested)
def test_rounding_touches_floats_only_and_keeps_the_structure(obj):
    out = results.round_figures(obj)

    def same_shape(a, b):
        if isinstance(a, float):
            return isinstance(b, float) and b == results.round_figure(a)
        if isinstance(a, dict):
            return isinstance(b, dict) and list(a) == list(b) and all(same_shape(a[k], b[k]) for k in a)
        if isinstance(a, list):
            return isinstance(b, list) and len(a) == len(b) and all(map(same_shape, a, b))
        return a == b and type(a) is type(b)

    assert same_shape(obj, out)


def test_run_facts_are_written_when_the_work_ends_well_and_left_alone_when_it_fails(tmp_path):
    with results.RunFacts("align", tmp_path) as facts:
        facts["frames"] = 1000
    written = json.loads(results.run_facts_path("align", tmp_path).read_text())
    assert written["frames"] == 1000 and written["wall_time_s"] >= 0 and written["frames_per_s"] > 0
    assert written["peak_memory_mb"] > 0
    with pytest.raises(RuntimeError), results.RunFacts("align", tmp_path) as facts:
        facts["frames"] = 5
        raise RuntimeError("the stage failed")
    assert json.loads(results.run_facts_path("align", tmp_path).read_text()) == written
    assert results.read_run_facts(tmp_path) == {"align": written}
    assert results.read_run_facts(tmp_path / "nowhere") == {}


def test_numerics_are_pinned_unless_the_user_chose_otherwise(monkeypatch):
    for name in results.PINNED_NUMERICS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    results.pin_numerics()
    import os

    assert os.environ["ATEN_CPU_CAPABILITY"] == "avx2" and os.environ["MKL_CBWR"] == "COMPATIBLE"
    assert os.environ["OMP_NUM_THREADS"] == "2"
