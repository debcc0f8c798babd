"""Property tests of the API contract: whatever the options, the server answers with the documented result or
a 4xx in the documented error shape, never a 5xx, and keeps serving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prg.pipeline import PRGResult
from prg.serve.app import PredictOptions, ServeSettings, create_app
from tests.serve.conftest import ForcedPipeline, scene

RGB, DEPTH = scene()

finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
anything = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 60), finite, st.text(max_size=8), st.lists(finite, max_size=3)
)
intrinsics = st.one_of(
    st.none(),
    st.fixed_dictionaries({"fx": finite, "fy": finite, "cx": finite, "cy": finite}),
    st.fixed_dictionaries({"K": st.lists(st.lists(finite, min_size=3, max_size=3), min_size=2, max_size=3)}),
    st.dictionaries(st.sampled_from(["fx", "fy", "cx", "k"]), anything, max_size=3),
)
options = st.fixed_dictionaries(
    {"instruction": st.one_of(st.text(min_size=0, max_size=60), anything)},
    optional={
        "intrinsics": intrinsics,
        "k_docs": st.one_of(st.integers(-2, 60), anything),
        "k_grasps": st.one_of(st.integers(-2, 60), anything),
        "depth_scale": st.one_of(finite, anything),
        "depth_format": st.one_of(st.sampled_from(["png", "tiff", "npy", "jpeg"]), anything),
        "extra": anything,
    },
)


@pytest.fixture(scope="module")
def client(forced_pipeline: ForcedPipeline) -> Iterator[TestClient]:
    with TestClient(create_app(forced_pipeline, ServeSettings(max_wait_ms=0))) as c:
        yield c


def _valid(opts: dict[str, Any]) -> bool:
    try:
        PredictOptions.model_validate(opts)
    except Exception:
        return False
    return True


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opts=options, with_depth=st.booleans())
def test_any_options_get_the_result_or_a_documented_4xx(
    client: TestClient, opts: dict[str, Any], with_depth: bool
) -> None:
    files = {"image": ("s.png", RGB, "image/png")}
    if with_depth:
        files["depth"] = ("d.png", DEPTH, "image/png")
    r = client.post("/v1/predict", files=files, data={"request": json.dumps(opts)})
    assert r.status_code < 500, r.text
    if r.status_code == 200:
        assert _valid(opts)  # nothing the schema refuses is answered
        res = PRGResult.model_validate(r.json())
        k = opts.get("k_grasps") or 3
        assert all(len(g) <= k for g in res.grasps)
        if not with_depth or opts.get("intrinsics") is None:
            assert res.poses == []
    else:
        err = r.json()["error"]
        assert 400 <= r.status_code < 500 and set(err) == {"code", "message", "field"} and err["message"]
        spec_codes = client.get("/openapi.json").json()["paths"]["/v1/predict"]["post"]["responses"]
        assert str(r.status_code) in spec_codes  # every status the server gives is documented
