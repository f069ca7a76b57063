"""The local model on CPUs with Intel AMX, whose llama.cpp matrix product crashed the process."""

from __future__ import annotations

from pathlib import Path

import pytest

from apex.models import contexts
from apex.models.local import smollm2_path


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu avx2 avx512f amx_bf16 amx_tile amx_int8 avx512_fp16", True),
        ("fpu avx2 avx512f avx512_vnni", False),
        ("fpu avx2 xamx_int8x", False),  # a flag is a whole word
    ],
)
def test_amx_is_read_from_the_cpu_flags(tmp_path: Path, flags: str, expected: bool) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: a CPU amx_int8\nflags\t\t: {flags}\n")
    assert contexts.cpu_has_amx(cpuinfo) is expected


def test_no_cpuinfo_means_no_amx(tmp_path: Path) -> None:
    assert contexts.cpu_has_amx(tmp_path / "missing") is False


@pytest.mark.slow
@pytest.mark.parametrize("amx", [True, False])
def test_a_context_on_an_amx_cpu_keeps_plain_buffers_and_generates(
    monkeypatch: pytest.MonkeyPatch, amx: bool
) -> None:
    bindings = contexts.llama().llama_cpp
    defaults = bindings.llama_model_default_params
    monkeypatch.setattr(contexts, "cpu_has_amx", lambda: amx)
    model = contexts._open(smollm2_path())
    try:
        assert model.model_params.use_extra_bufts is (not amx)
        assert bindings.llama_model_default_params is defaults  # put back for the next load
        if amx:  # (with AMX's buffers, generating is what crashed on an AMX CPU)
            out = model.create_completion("The capital of France is", max_tokens=8)
            assert out["usage"]["completion_tokens"] > 0
    finally:
        model.close()
