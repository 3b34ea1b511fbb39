"""Docstrings and the figures quoted about the kernels.

Every public function documents each parameter of its signature (numpydoc
"Parameters"), a kernel and its NumPy twin document their parameters
identically (the shared text of fastconv/_docstrings.py), and the figures
that show_config(), the docstrings and README.md quote (Winograd thresholds
and tiles, micro-kernel sizes) are those the code uses.
"""
import inspect
import math
import re
import types
from pathlib import Path

import numpy as np
import pytest

import fastconv
import fastconv.reference as reference
from fastconv import _config, _convplan, _docstrings, _ext

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------
# a small numpydoc reader
# ---------------------------------------------------------------------------

def _sections(doc):
    """{title: [lines]} of a numpydoc docstring (a title is a line followed by
    dashes of its length; the text before the first is under "")."""
    lines = inspect.cleandoc(doc or "").split("\n")
    out, title = {"": []}, ""
    i = 0
    while i < len(lines):
        if (i + 1 < len(lines) and lines[i].strip() and not lines[i].startswith(" ")
                and re.fullmatch(r"-{3,}", lines[i + 1])
                and len(lines[i + 1]) == len(lines[i])):
            title = lines[i]
            assert title not in out, f"section {title!r} twice"
            out[title] = []
            i += 2
            continue
        out[title].append(lines[i])
        i += 1
    return out


def _entries(lines):
    """{name: (type, description)} of a Parameters-like section: an entry is
    ``name[, name...][ : type]`` at the margin followed by indented lines;
    whitespace is normalised."""
    out, current = {}, None
    for line in lines:
        if line.strip() and not line.startswith(" "):
            names, _, typ = line.partition(" : ")
            current = [typ.strip(), []]
            for name in names.split(","):
                name = name.strip()
                assert name not in out, f"{name!r} documented twice"
                out[name] = current
        elif line.strip():
            assert current is not None, f"text before the first entry: {line!r}"
            current[1].append(line.strip())
    return {k: (typ, " ".join(desc)) for k, (typ, desc) in out.items()}


def parameters(f):
    return _entries(_sections(f.__doc__).get("Parameters", []))


def _signature_names(f):
    names = []
    for p in inspect.signature(f).parameters.values():
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        names.append(prefix + p.name)
    return names


def _public_functions(module):
    return [(module.__name__, name) for name in module.__all__
            if inspect.isfunction(getattr(module, name))]


PUBLIC = _public_functions(fastconv) + _public_functions(reference)
TWINS = sorted(set(fastconv.__all__) & set(reference.__all__))


def test_the_reader_reads_numpydoc():
    def f(a, b, *args, c=1, **kwargs):
        """Summary.

        Parameters
        ----------
        a, b : int
            Two ints,
            on two lines.
        *args
        c : float, optional
        **kwargs : dict
            More.

        Returns
        -------
        int
        """
    assert _signature_names(f) == ["a", "b", "*args", "c", "**kwargs"]
    assert parameters(f) == {"a": ("int", "Two ints, on two lines."),
                             "b": ("int", "Two ints, on two lines."),
                             "*args": ("", ""), "c": ("float, optional", ""),
                             "**kwargs": ("dict", "More.")}
    assert _sections(f.__doc__)["Returns"] == ["int"]


def test_the_lists_are_not_empty():
    # the parametrizations below must not pass by testing nothing
    assert len(PUBLIC) >= 75 and len(TWINS) >= 35
    assert "conv2d" in TWINS and "batch_norm2d" in TWINS


# ---------------------------------------------------------------------------
# every parameter documented, the twins alike
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("module, name", PUBLIC, ids=[f"{m}.{n}" for m, n in PUBLIC])
def test_every_parameter_is_documented(module, name):
    f = getattr(fastconv if module == "fastconv" else reference, name)
    documented = parameters(f)
    names = _signature_names(f)
    missing = [n for n in names if n not in documented]
    assert not missing, f"{module}.{name}: no Parameters entry for {missing}"
    stale = [n for n in documented if n not in names]
    assert not stale, f"{module}.{name}: documents {stale}, not in its signature"
    assert "%(" not in f.__doc__, f"{module}.{name}: an unfilled placeholder"


@pytest.mark.parametrize("name", TWINS)
def test_twins_document_their_parameters_alike(name):
    fast, twin = getattr(fastconv, name), getattr(reference, name)
    assert _signature_names(fast) == _signature_names(twin)
    a, b = parameters(fast), parameters(twin)
    for p in _signature_names(fast):
        assert a[p] == b[p], (
            f"{name}: parameter {p!r} documented differently\n"
            f"  fastconv:  {a[p]}\n  reference: {b[p]}")


@pytest.mark.parametrize("name", TWINS)
def test_twins_document_their_results_alike(name):
    a = _sections(getattr(fastconv, name).__doc__).get("Returns")
    b = _sections(getattr(reference, name).__doc__).get("Returns")
    assert a and _entries(a), f"{name}: no Returns section"
    assert _entries(a) == _entries(b), f"{name}: the twins document their results differently"


def test_every_shared_paragraph_is_used():
    docs = "\n".join(inspect.cleandoc(getattr(m, n).__doc__)
                     for m in (fastconv, reference) for n in m.__all__
                     if inspect.isfunction(getattr(m, n)))
    unused = [k for k, text in _docstrings.docdict.items() if text not in docs]
    assert not unused, f"docdict entries no docstring uses: {unused}"


def test_where_the_twin_differs_the_text_says_so():
    for name in ("conv2d", "conv2d_backward", "conv1d", "conv1d_backward"):
        typ, desc = parameters(getattr(reference, name))["algorithm"]
        assert "otherwise ignores it" in desc and "fastconv.reference" in desc, name


def test_docfiller_indents_and_fails_loudly():
    _docstrings.docdict["_test_entry"] = "a : int\n    The a."
    try:
        def f():
            """Summary.

            Parameters
            ----------
            %(_test_entry)s
            """
        _docstrings.docfiller(f)
        assert parameters(f) == {"a": ("int", "The a.")}
        assert "            a : int\n                The a.\n" in f.__doc__

        def g():
            """%(_no_such_entry)s"""
        with pytest.raises(KeyError):
            _docstrings.docfiller(g)

        def h():
            """Inline %(_test_entry)s is not filled."""
        with pytest.raises(ValueError, match="line of its own"):
            _docstrings.docfiller(h)

        def k():
            pass
        assert _docstrings.docfiller(k) is k and k.__doc__ is None   # python -OO
    finally:
        del _docstrings.docdict["_test_entry"]


# ---------------------------------------------------------------------------
# the figures quoted about the kernels
# ---------------------------------------------------------------------------

def _flat(text):
    """Whitespace normalised, RST/Markdown literal quotes removed."""
    return " ".join(text.replace("``", "").replace("`", "").split())


def _readme():
    path = ROOT / "README.md"
    if not path.is_file():
        pytest.skip("README.md is not next to tests/ (an installed wheel's tests)")
    return _flat(path.read_text(encoding="utf-8"))


def _pays(channels, positions, filters=None):
    """winograd_pays for a 1x1-image batch of `positions` images."""
    F = channels if filters is None else filters
    return _convplan.winograd_pays((positions, channels, 1, 1), (F, channels, 3, 3), 1)


def _check_winograd_thresholds(many, whole, ragged, vector, few_lo, few_hi, few_pos):
    """The rule as quoted: >= `many` channels and filters per group and
    N*H*W >= `whole` (`ragged` unless both are multiples of `vector`), or
    few_lo..few_hi of them, multiples of `vector`, and N*H*W >= few_pos."""
    assert few_lo == _convplan.WINOGRAD_MIN_CHANNELS and few_hi == many - 1
    assert many % vector == 0 and few_lo % vector == 0
    assert _pays(many, whole) and not _pays(many, whole - 1)
    assert _pays(many + 1, ragged) and not _pays(many + 1, ragged - 1)
    assert _pays(many, ragged, filters=many + 1) and not _pays(many, ragged - 1, many + 1)
    for c in range(few_lo, few_hi + 1):
        if c % vector == 0:
            assert _pays(c, few_pos) and not _pays(c, few_pos - 1), c
        else:
            assert not _pays(c, 10**9), c
    assert not _pays(few_lo - 1, 10**9) and not _pays(few_lo, 10**9, filters=few_lo - 1)


_RULE = (r"at least (\d+) input channels and filters per group and N\*H\*W >= (\d+) "
         r"\((?:>= )?(\d+) if either (?:count )?is not a multiple of (\d+)\), or (\d+) "
         r"to (\d+) of them, both multiples of \d+, and N\*H\*W >= (\d+)")


def test_select_algorithm_quotes_the_winograd_rule():
    m = re.search(_RULE, _flat(fastconv.select_algorithm.__doc__))
    assert m, "select_algorithm's docstring no longer states the rule"
    _check_winograd_thresholds(*map(int, m.groups()))


def test_winograd_pays_quotes_its_own_rule():
    doc = _flat(_convplan.winograd_pays.__doc__)
    m = re.search(r"N\*H\*W >= (\d+) with at least (\d+) channels and filters per group "
                  r"\((\d+) if either is not a multiple of (\d+)\); N\*H\*W >= (\d+) with "
                  r"(\d+) to (\d+), both multiples of \d+", doc)
    assert m, "winograd_pays's docstring no longer states the rule"
    whole, many, ragged, vector, few_pos, few_lo, few_hi = map(int, m.groups())
    _check_winograd_thresholds(many, whole, ragged, vector, few_lo, few_hi, few_pos)
    assert f"never with fewer than {_convplan.WINOGRAD_MIN_CHANNELS}" in doc


def test_readme_quotes_the_winograd_rule():
    m = re.search(_RULE, _readme())
    assert m, "README's 'Which convolution kernel runs' no longer states the rule"
    _check_winograd_thresholds(*map(int, m.groups()))


def _saving(m):
    """Multiplications of the direct sum over Winograd F(m x m, 3x3)'s."""
    return 9 * m * m / (m + 2) ** 2


def test_readme_quotes_the_winograd_tiles():
    text = _readme()
    tiles = sorted(set(_convplan.WINOGRAD_TILES.values()), reverse=True)
    m = re.search(r"where the direct sum takes 9 m\^2: " + ", ".join(
        rf"F\({t}x{t}, 3x3\) ([\d.]+)x(?: fewer)?" for t in tiles), text)
    assert m, "README no longer quotes the tiles' savings"
    assert [float(v) for v in m.groups()] == [_saving(t) for t in tiles]
    # "a 5x5 output ties and takes F(2x2)"
    m = re.search(r"a (\d+)x(\d+) output ties and takes F\((\d+)x\d+\)", text)
    assert m
    ho, wo, tile = map(int, m.groups())
    cost = {t: (t + 2) ** 2 * math.ceil(ho / t) * math.ceil(wo / t) for t in tiles}
    assert len(set(cost.values())) == 1, f"{ho}x{wo} is no tie: {cost}"
    assert _convplan.winograd_tile(ho, wo) == tile


def test_conv2d_quotes_the_winograd_savings():
    desc = _flat(parameters(fastconv.conv2d)["algorithm"][1])
    for t in set(_convplan.WINOGRAD_TILES.values()):
        assert re.search(rf"F\({t}x{t}\): {_saving(t):g}x", desc), t


def _micro_kernels():
    """{dtype: {isa: (mr, nr)}} from src_c/ukernel.c's tables."""
    path = ROOT / "src_c" / "ukernel.c"
    if not path.is_file():
        pytest.skip("src_c/ is not next to tests/ (an installed wheel's tests)")
    src = path.read_text(encoding="utf-8")
    out = {}
    for ctype, dtype in (("float", np.float32), ("double", np.float64)):
        table = re.search(rf"fc_ukernel_{ctype} kernels_{ctype}\[\] = \{{(.*?)\n\}};",
                          src, re.S)
        assert table, ctype
        rows = re.findall(r'\{"(\w+)", (\d+), (\d+),', table.group(1))
        out[dtype] = {isa: (int(mr), int(nr)) for isa, mr, nr in rows}
    assert set(out[np.float32]) == set(out[np.float64]) == {"avx512", "avx2", "generic"}
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_kernels_in_use_are_those_of_the_table(dtype):
    # The filters per packed panel of the running GEMM are its mr.
    g = types.SimpleNamespace(C=1, F=1, groups=1, kh=1, kw=1)
    mr = _ext.packed_size("gemm", dtype, g)
    assert mr == _micro_kernels()[dtype][_ext.gemm_isa()][0]


def test_readme_quotes_the_micro_kernel_sizes():
    uk = _micro_kernels()
    m = re.search(r"The GEMM is fastconv's own: (\d+)x(\d+) AVX-512 \((\d+)x(\d+) in "
                  r"float64\), (\d+)x(\d+) AVX2 \((\d+)x(\d+)\) or generic C", _readme())
    assert m, "README's GEMM paragraph no longer quotes the micro-kernel sizes"
    v = list(map(int, m.groups()))
    assert (v[0], v[1]) == uk[np.float32]["avx512"]
    assert (v[2], v[3]) == uk[np.float64]["avx512"]
    assert (v[4], v[5]) == uk[np.float32]["avx2"]
    assert (v[6], v[7]) == uk[np.float64]["avx2"]


def test_show_config_figures_come_from_the_code(capsys):
    config = fastconv.show_config()
    out = capsys.readouterr().out
    assert config["gemm kernels"].startswith(_ext.gemm_isa() + " ")
    algorithms = config["conv2d algorithms"]
    assert algorithms == _config._algorithms() and algorithms in out
    tiles = {int(a) for a, b in re.findall(r"F\((\d+)x(\d+), 3x3\)", algorithms) if a == b}
    assert tiles == set(_convplan.WINOGRAD_TILES.values())
    m = re.search(r"at least (\d+) channels and filters per group", algorithms)
    assert m and int(m.group(1)) == _convplan.WINOGRAD_MIN_CHANNELS
