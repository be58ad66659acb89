"""The parts of vLLM's API the backend relies on, read from a vLLM wheel's source.

vLLM cannot be installed here (it needs CUDA), so its signatures are read without importing
it and kept in vllm_contract.json, which tests/inference/backends/test_vllm_contract.py holds
the backend to. After moving the `gpu` extra to another vLLM, regenerate the file:

    pip download --no-deps vllm==X.Y.Z -d /tmp/vllm
    python -m tests.support.vllm_contract /tmp/vllm/vllm-X.Y.Z-*.whl
"""

import ast
import json
import re
import sys
import zipfile
from pathlib import Path

CONTRACT = Path(__file__).with_name("vllm_contract.json")


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)


def _method_parameters(cls: ast.ClassDef, name: str) -> dict:
    method = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == name)
    args = method.args
    names = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs] if a.arg != "self"]
    return {"parameters": names, "var_keyword": args.kwarg is not None}


def _fields(cls: ast.ClassDef) -> list[str]:
    return [
        n.target.id
        for n in cls.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    ]


def contract_from_wheel(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as archive:
        read = lambda path: ast.parse(archive.read(path).decode())  # noqa: E731
        llm = _class(read("vllm/entrypoints/llm.py"), "LLM")
        version = re.search(r"vllm-([0-9][^-]*)-", wheel.name)
        return {
            "vllm": version.group(1) if version else wheel.name,
            "LLM.__init__": _method_parameters(llm, "__init__"),
            "LLM.generate": _method_parameters(llm, "generate"),
            "LLM.chat": _method_parameters(llm, "chat"),
            "EngineArgs": _fields(_class(read("vllm/engine/arg_utils.py"), "EngineArgs")),
            "SamplingParams": _fields(_class(read("vllm/sampling_params.py"), "SamplingParams")),
            "TokensPrompt": _fields(_class(read("vllm/inputs/llm.py"), "TokensPrompt")),
        }


if __name__ == "__main__":
    contract = contract_from_wheel(Path(sys.argv[1]))
    CONTRACT.write_text(json.dumps(contract, indent=1) + "\n")
    print(f"{CONTRACT}: vLLM {contract['vllm']}")
