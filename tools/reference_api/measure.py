"""Measure this project's coverage of the reference rlmesh public API.

Reads ``surface.json`` (beside this file: the reference's public names and the
parameter lists of its functions, constructors and methods), imports each module
of this project, and reports per module and in total:

* names present (``getattr`` on the imported module);
* per signature, whether a call written against the reference binds here:
  ``compatible`` (every check binds), ``names-differ`` (binds positionally, but
  the required parameters do not bind by keyword), ``incompatible`` or
  ``missing``.

Usage::

    uv run python tools/reference_api/measure.py [--json] [--missing] [--details]

The exit status is always 0: this is a measure, not a gate (the gate is
tests/test_reference_api.py).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

SURFACE_PATH = Path(__file__).with_name("surface.json")

STATUSES: tuple[str, ...] = ("compatible", "names-differ", "incompatible", "missing")


class _Dummy:
    """A placeholder argument value; binding never looks at values."""

    def __repr__(self) -> str:
        return "<dummy>"


_ARG = _Dummy()


@dataclass
class SignatureResult:
    """The outcome of checking one reference signature.

    Attributes:
        name: Qualified name inside its module (``"Model.run"``).
        status: One of :data:`STATUSES`.
        failures: ``(check, error)`` pairs for the checks that did not bind.
    """

    name: str
    status: str
    failures: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ModuleResult:
    """The outcome for one reference module.

    Attributes:
        module: The module name.
        import_error: Why it did not import, or ``None``.
        names_total: Reference names counted in the rc5 total.
        names_present: Those of them present here.
        missing_names: Those absent here.
        signatures: One result per counted reference signature.
    """

    module: str
    import_error: str | None
    names_total: int
    names_present: list[str]
    missing_names: list[str]
    signatures: list[SignatureResult]

    def counts(self) -> dict[str, int]:
        """Return the number of signatures in each status."""
        out = dict.fromkeys(STATUSES, 0)
        for sig in self.signatures:
            out[sig.status] += 1
        return out


def load_surface(path: Path = SURFACE_PATH) -> dict[str, Any]:
    """Load the reference surface document.

    Args:
        path: The JSON file.

    Returns:
        The parsed document.
    """
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def surface_totals(surface: dict[str, Any]) -> tuple[int, int]:
    """Count the rc5 names and signatures the document lists.

    Args:
        surface: The document from :func:`load_surface`.

    Returns:
        ``(names, signatures)``, leaving out ``"since": "later"`` names and
        ``"counted": false`` signatures.
    """
    names = sigs = 0
    for mod in surface["modules"].values():
        names += sum(1 for n in mod["names"] if "since" not in n)
        sigs += sum(1 for s in mod["signatures"] if s.get("counted", True))
    return names, sigs


def _resolve(module: object, qualname: str) -> tuple[Any, bool] | None:
    """Find the callable a reference signature names.

    Args:
        module: The imported module of this project.
        qualname: ``"func"``, ``"Class"`` or ``"Class.method"``.

    Returns:
        ``(callable, drop_first)`` where ``drop_first`` says to drop the
        unbound method's ``self``/``cls``; ``None`` when absent.
    """
    head, _, member = qualname.partition(".")
    obj = getattr(module, head, None)
    if obj is None:
        return None
    if not member:
        return (obj, False) if callable(obj) else None
    if not inspect.isclass(obj):
        return None
    try:
        raw = inspect.getattr_static(obj, member)
    except AttributeError:
        return None
    if isinstance(raw, staticmethod):
        return raw.__func__, False
    if isinstance(raw, classmethod):
        return raw.__func__, True
    if inspect.isfunction(raw):
        return raw, True
    attr = getattr(obj, member, None)
    if callable(attr) and not isinstance(raw, property):
        # A C-level method descriptor or other callable: its signature includes self.
        return attr, inspect.ismethoddescriptor(raw)
    return None


def _is_opaque(sig: inspect.Signature) -> bool:
    """Whether a signature forwards everything (has both ``*args`` and ``**kwargs``)."""
    kinds = {p.kind for p in sig.parameters.values()}
    return {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD} <= kinds


def _see_through(cls: type, sig: inspect.Signature) -> inspect.Signature:
    """Look past a constructor that forwards ``*args, **kwargs`` to its base class.

    A subclass whose ``__init__`` is ``(*args, extra=..., **kwargs)`` and calls
    ``super().__init__(*args, **kwargs)`` would bind any call; the base class's
    constructor says what the call really needs. The subclass's own named
    parameters are kept as keyword-only.

    Args:
        cls: The class.
        sig: Its constructor signature.

    Returns:
        The effective signature (``sig`` itself when nothing is forwarded).
    """
    if not _is_opaque(sig):
        return sig
    for base in cls.__mro__[1:]:
        if base is object or "__init__" not in vars(base):
            continue
        try:
            base_sig = inspect.signature(base)
        except (TypeError, ValueError):
            return sig
        if _is_opaque(base_sig):
            continue
        own = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name not in base_sig.parameters
        ]
        params = list(base_sig.parameters.values())
        tail = [p for p in params if p.kind == p.VAR_KEYWORD]
        head = [p for p in params if p.kind != p.VAR_KEYWORD]
        return base_sig.replace(parameters=head + own + tail)
    return sig


def _signature(obj: Any, drop_first: bool) -> inspect.Signature:
    """Return the signature to bind against, without ``self`` when asked."""
    sig = inspect.signature(obj)
    if inspect.isclass(obj):
        sig = _see_through(obj, sig)
    if drop_first:
        params = list(sig.parameters.values())
        if params and params[0].kind in (
            params[0].POSITIONAL_ONLY,
            params[0].POSITIONAL_OR_KEYWORD,
        ):
            sig = sig.replace(parameters=params[1:])
    return sig


def _calls(params: Sequence[dict[str, Any]]) -> list[tuple[str, list[Any], dict[str, Any]]]:
    """Build the calls a reference user could write against ``params``.

    Args:
        params: The reference parameters (``name``, ``kind``, ``required``).

    Returns:
        ``(check, args, kwargs)`` triples; the first is the plain call with the
        required parameters positionally, the second the same by keyword.
    """
    req_pos = [
        p
        for p in params
        if p["required"] and p["kind"] in ("positional-only", "positional-or-keyword")
    ]
    req_kw = {p["name"]: _ARG for p in params if p["required"] and p["kind"] == "keyword-only"}
    base_args: list[Any] = [_ARG] * len(req_pos)
    calls: list[tuple[str, list[Any], dict[str, Any]]] = [
        ("required params", base_args, dict(req_kw))
    ]
    by_kw_args = [_ARG for p in req_pos if p["kind"] == "positional-only"]
    by_kw = {p["name"]: _ARG for p in req_pos if p["kind"] != "positional-only"}
    calls.append(("required params by keyword", by_kw_args, {**by_kw, **req_kw}))
    optional_pos_only = 0
    for p in params:
        if p["required"]:
            continue
        if p["kind"] == "positional-only":
            optional_pos_only += 1
            calls.append(
                (f"positional '{p['name']}'", base_args + [_ARG] * optional_pos_only, dict(req_kw))
            )
        elif p["kind"] in ("positional-or-keyword", "keyword-only"):
            calls.append((f"keyword '{p['name']}'", base_args, {**req_kw, p["name"]: _ARG}))
        elif p["kind"] == "var-positional":
            extra = sum(
                1 for q in params if q["kind"] in ("positional-only", "positional-or-keyword")
            )
            calls.append(("*args", [_ARG] * (extra + 2), dict(req_kw)))
        elif p["kind"] == "var-keyword":
            calls.append(("**kwargs", base_args, {**req_kw, "zz_arbitrary_kw": _ARG}))
    return calls


def check_signature(module: object, entry: dict[str, Any]) -> SignatureResult:
    """Check one reference signature against this project.

    Args:
        module: The imported module of this project, or ``None``.
        entry: The surface entry (``name``, ``kind``, ``params``).

    Returns:
        The classified result.
    """
    name = entry["name"]
    found = _resolve(module, name) if module is not None else None
    if found is None:
        return SignatureResult(name, "missing")
    try:
        sig = _signature(*found)
    except (TypeError, ValueError) as exc:
        return SignatureResult(name, "incompatible", [("signature", f"no signature: {exc}")])
    failures: list[tuple[str, str]] = []
    for check, args, kwargs in _calls(entry["params"]):
        try:
            sig.bind(*args, **kwargs)
        except TypeError as exc:
            failures.append((check, str(exc)))
    if not failures:
        status = "compatible"
    elif all(check == "required params by keyword" for check, _ in failures):
        status = "names-differ"
    else:
        status = "incompatible"
    return SignatureResult(name, status, failures)


def _has_name(module: ModuleType, name: str, kind: str) -> bool:
    """Whether this project's ``module`` has the reference's ``name``.

    A submodule counts when it can be imported, so the answer does not depend
    on which submodules happen to be imported already.

    Args:
        module: The imported module of this project.
        name: The reference name.
        kind: The reference name's kind (``"module"``, ``"class"``, ...).

    Returns:
        True when present.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if hasattr(module, name):
            return True
    if kind != "module":
        return False
    try:
        return importlib.util.find_spec(f"{module.__name__}.{name}") is not None
    except (ImportError, ValueError):
        return False


def measure_module(mod_name: str, spec: dict[str, Any]) -> ModuleResult:
    """Measure one reference module against this project.

    Args:
        mod_name: The module name, e.g. ``"rlmesh.numpy"``.
        spec: Its entry in the surface document.

    Returns:
        The module's result.
    """
    module: ModuleType | None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = importlib.import_module(mod_name)
        import_error = None
    except Exception as exc:
        module, import_error = (
            None,
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
        )
    kinds = {n["name"]: n["kind"] for n in spec["names"] if "since" not in n}
    names = sorted(kinds)
    present = [n for n in names if module is not None and _has_name(module, n, kinds[n])]
    missing = [n for n in names if n not in present]
    sigs = [check_signature(module, e) for e in spec["signatures"] if e.get("counted", True)]
    return ModuleResult(mod_name, import_error, len(names), present, missing, sigs)


def measure(surface: dict[str, Any] | None = None) -> list[ModuleResult]:
    """Measure every reference module.

    Args:
        surface: The document; loaded from :data:`SURFACE_PATH` when ``None``.

    Returns:
        One result per module, in the document's (sorted) order.
    """
    surface = surface if surface is not None else load_surface()
    return [measure_module(name, surface["modules"][name]) for name in sorted(surface["modules"])]


def summary(results: Sequence[ModuleResult]) -> dict[str, Any]:
    """Summarise results as a JSON-ready dict.

    Args:
        results: From :func:`measure`.

    Returns:
        Totals plus per-module counts, present and missing names, and each
        signature's status and failed checks.
    """
    total = dict.fromkeys(STATUSES, 0)
    modules: dict[str, Any] = {}
    for r in results:
        counts = r.counts()
        for key, value in counts.items():
            total[key] += value
        modules[r.module] = {
            "import_error": r.import_error,
            "names_present": len(r.names_present),
            "names_total": r.names_total,
            "present": r.names_present,
            "missing": r.missing_names,
            "signatures": counts,
            "signatures_total": len(r.signatures),
            "signature_results": {
                s.name: {"status": s.status, "failures": [list(f) for f in s.failures]}
                for s in r.signatures
            },
        }
    return {
        "names_present": sum(len(r.names_present) for r in results),
        "names_total": sum(r.names_total for r in results),
        "signatures": total,
        "signatures_total": sum(len(r.signatures) for r in results),
        "modules": modules,
    }


def _counts_cell(counts: dict[str, int], total: int) -> str:
    """Format ``compatible / names-differ / incompatible / missing (total)``."""
    return " / ".join(str(counts[key]) for key in STATUSES) + f" ({total})"


def render_table(results: Sequence[ModuleResult], reference: str) -> str:
    """Render the per-module Markdown table, like the gap list's.

    Args:
        results: From :func:`measure`.
        reference: The reference's label, e.g. ``"rlmesh 0.1.0rc5"``.

    Returns:
        The table with a heading and a total row.
    """
    lines = [
        f"Reference API coverage (against {reference})",
        "",
        "| module | imports | names present | signatures: compatible / names-differ / "
        "incompatible / missing (total) |",
        "|---|---|---|---|",
    ]
    for r in results:
        c = r.counts()
        imports = "yes" if r.import_error is None else f"no ({r.import_error[:90]})"
        lines.append(
            f"| {r.module} | {imports} | {len(r.names_present)}/{r.names_total} | "
            f"{_counts_cell(c, len(r.signatures))} |"
        )
    s = summary(results)
    t = s["signatures"]
    lines.append(
        f"| **total** |  | {s['names_present']}/{s['names_total']} | "
        f"{_counts_cell(t, s['signatures_total'])} |"
    )
    return "\n".join(lines)


def render_missing(results: Sequence[ModuleResult]) -> str:
    """List missing names and missing signatures by module.

    Args:
        results: From :func:`measure`.

    Returns:
        A Markdown list.
    """
    lines = ["", "Missing, by module", ""]
    for r in results:
        sigs = [s.name for s in r.signatures if s.status == "missing"]
        if not r.missing_names and not sigs:
            continue
        lines.append(f"- **{r.module}**")
        if r.missing_names:
            lines.append(
                f"  - names ({len(r.missing_names)}): "
                + ", ".join(f"`{n}`" for n in r.missing_names)
            )
        if sigs:
            lines.append(f"  - signatures ({len(sigs)}): " + ", ".join(f"`{n}`" for n in sigs))
    return "\n".join(lines)


def render_details(results: Sequence[ModuleResult]) -> str:
    """List the signatures that exist but are not call-compatible, with reasons.

    Args:
        results: From :func:`measure`.

    Returns:
        A Markdown list.
    """
    lines = ["", "Signatures that exist but are not call-compatible", ""]
    for r in results:
        for s in r.signatures:
            if s.status in ("names-differ", "incompatible"):
                why = "; ".join(f"{check}: {err}" for check, err in s.failures)
                lines.append(f"- `{r.module}.{s.name}` [{s.status}]: {why}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measure and print the report.

    Args:
        argv: Command-line arguments (``sys.argv[1:]`` when ``None``).

    Returns:
        Always 0.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument(
        "--missing", action="store_true", help="list missing names and signatures by module"
    )
    parser.add_argument(
        "--details", action="store_true", help="list why signatures are not call-compatible"
    )
    args = parser.parse_args(argv)
    surface = load_surface()
    results = measure(surface)
    ref = surface["reference"]
    if args.json:
        doc = {"reference": ref, **summary(results)}
        json.dump(doc, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    print(render_table(results, f"{ref['package']} {ref['version']}"))
    if args.missing:
        print(render_missing(results))
    if args.details:
        print(render_details(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
