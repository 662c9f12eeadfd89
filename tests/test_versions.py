"""Version ordering per scheme: comparison tables, equality, invalid input."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.versions import SCHEMES, InvalidVersion, scheme

# (scheme, a, b, expected sign of compare(a, b))
TABLE = [
    # dpkg: Debian policy 5.6.12
    ("dpkg", "1.0~rc1", "1.0", -1),
    ("dpkg", "1.0~~", "1.0~", -1),
    ("dpkg", "1.0~~a", "1.0~", -1),
    ("dpkg", "1.0~", "1.0", -1),
    ("dpkg", "1.0", "1.0a", -1),
    ("dpkg", "1.0a", "1.0+", -1),  # letters sort before other symbols
    ("dpkg", "1.0a", "1.0.1", -1),
    ("dpkg", "1.0+dfsg-1", "1.0-1", 1),
    ("dpkg", "1:1.0", "2.0", 1),  # the epoch wins
    ("dpkg", "2:1.0", "1:9.9", 1),
    ("dpkg", "0:1.0", "1.0", 0),
    ("dpkg", "1.0", "1.0-0", 0),  # no revision is revision 0
    ("dpkg", "1.001", "1.1", 0),
    ("dpkg", "2.30-1", "2.4-1", 1),
    ("dpkg", "1.2.3-1", "1.2.3-1ubuntu1", -1),
    ("dpkg", "1.0-1", "1.0-1.1", -1),
    ("dpkg", "3.0.11-1~deb12u2", "3.0.11-1", -1),
    ("dpkg", "3.0.11-1~deb12u2", "3.0.11-1~deb12u1", 1),
    ("dpkg", "7.88.1-10+deb12u5", "7.88.1-10+deb12u4", 1),
    ("dpkg", "1:2.38-1-2", "1:2.38-1-10", -1),  # the revision is after the last hyphen
    # rpm: rpmvercmp, with tilde and caret
    ("rpm", "1.0", "1.0", 0),
    ("rpm", "1.0", "2.0", -1),
    ("rpm", "2.0.1", "2.0", 1),
    ("rpm", "2.0.1a", "2.0.1", 1),
    ("rpm", "5.5p1", "5.5p2", -1),
    ("rpm", "5.5p10", "5.5p1", 1),
    ("rpm", "10xyz", "10.1xyz", -1),
    ("rpm", "xyz10", "xyz10.1", -1),
    ("rpm", "xyz.4", "8", -1),  # a number beats letters
    ("rpm", "6.0.rc1", "6.0", 1),
    ("rpm", "10b2", "10a1", 1),
    ("rpm", "2.0", "2_0", 0),
    ("rpm", "2.0", "2.0_", 0),
    ("rpm", "a+", "a_", 0),
    ("rpm", "001", "1", 0),
    ("rpm", "1.0~rc1", "1.0", -1),
    ("rpm", "1.0~rc1", "1.0~rc2", -1),
    ("rpm", "1.0~rc1~git123", "1.0~rc1", -1),
    ("rpm", "1.0^", "1.0", 1),
    ("rpm", "1.0^git1", "1.0", 1),
    ("rpm", "1.0^git1", "1.01", -1),
    ("rpm", "1.0^20160101", "1.0.1", -1),
    ("rpm", "1.0^20160102", "1.0^20160101", 1),
    ("rpm", "1.0~rc1^git1", "1.0~rc1", 1),
    ("rpm", "1.0^git1~pre", "1.0^git1", -1),
    ("rpm", "1:1.0-1", "2.0-1", 1),
    ("rpm", "0:1.0-1", "1.0-1", 0),
    ("rpm", "3.0.7-24.el9", "3.0.7-25.el9_3", -1),
    ("rpm", "3.0.7-25.el9_3", "3.0.7-25.el9", 1),
    ("rpm", "1:3.0.7-24.el9", "3.0.8-1.el9", 1),
    ("rpm", "1.0", "1.0-1", -1),  # a missing release sorts first (see rpm.parse)
    # apk: apk-tools
    ("apk", "1.0_rc1", "1.0", -1),
    ("apk", "6.0_pre1", "6.0", -1),
    ("apk", "6.0_p1", "6.0", 1),
    ("apk", "1.0_alpha", "1.0_beta", -1),
    ("apk", "1.0_beta", "1.0_pre", -1),
    ("apk", "1.0_pre", "1.0_rc", -1),
    ("apk", "1.0_p1", "1.0_p2", -1),
    ("apk", "1.0_p10-r0", "1.0_p9-r0", 1),
    ("apk", "1.0_cvs", "1.0_p", -1),
    ("apk", "1.0-r1", "1.0", 1),
    ("apk", "1.0-r1", "1.0-r2", -1),
    ("apk", "1.2.3-r10", "1.2.3-r9", 1),
    ("apk", "1.01", "1.1", -1),  # leading zeros: a fraction
    ("apk", "1.00", "1.0", -1),
    ("apk", "1.0.0", "1.0", 1),
    ("apk", "1.0a", "1.0", 1),
    ("apk", "1.0a", "1.0b", -1),
    ("apk", "1.0b", "1.0.1", -1),
    ("apk", "1.1", "1.1_alpha1", 1),
    ("apk", "0.1.0_alpha_pre2", "0.1.0_alpha", -1),
    ("apk", "1.2.3_pre2-r0", "1.2.3-r0", -1),
    ("apk", "2.34", "0.1.0_alpha", 1),
    ("apk", "4.5_p1-r1", "4.5_p1", 1),
    ("apk", "0.9.8c-r1", "0.9.8d", -1),
    ("apk", "2.12r-r4", "2.12r-r5", -1),
    ("apk", "1.0.0_pre20191002222144-r0", "1.0.0_pre20210530193627-r0", -1),
    ("apk", "1.2.4-r2", "1.2.4_git20230717-r0", -1),
    ("apk", "3.1.4-r0", "3.1.4-r0", 0),
    # semver 2.0: the precedence example of the spec, and more
    ("semver", "1.0.0-alpha", "1.0.0-alpha.1", -1),
    ("semver", "1.0.0-alpha.1", "1.0.0-alpha.beta", -1),
    ("semver", "1.0.0-alpha.beta", "1.0.0-beta", -1),
    ("semver", "1.0.0-beta", "1.0.0-beta.2", -1),
    ("semver", "1.0.0-beta.2", "1.0.0-beta.11", -1),
    ("semver", "1.0.0-beta.11", "1.0.0-rc.1", -1),
    ("semver", "1.0.0-rc.1", "1.0.0", -1),
    ("semver", "1.0.0+build.1", "1.0.0", 0),
    ("semver", "1.2.3+incompatible", "1.2.3", 0),
    ("semver", "v1.2.3", "1.2.3", 0),
    ("semver", "1.10.0", "1.9.0", 1),
    ("semver", "2.0.0", "10.0.0", -1),
    ("semver", "0.0.0-20210101000000-abcdef123456", "0.0.1", -1),
    # PEP 440
    ("pep440", "1.0.dev1", "1.0a1", -1),
    ("pep440", "1.0a1", "1.0b1", -1),
    ("pep440", "1.0b1", "1.0rc1", -1),
    ("pep440", "1.0rc1", "1.0", -1),
    ("pep440", "1.0", "1.0.post1", -1),
    ("pep440", "1.0.post1.dev1", "1.0.post1", -1),
    ("pep440", "1.0a1.dev1", "1.0a1", -1),
    ("pep440", "1.0", "1.0+local", -1),
    ("pep440", "1.0+local.1", "1.0+local.2", -1),
    ("pep440", "1.0", "1.0.0", 0),
    ("pep440", "1-rc1", "1rc1", 0),
    ("pep440", "v1.0", "1.0", 0),
    ("pep440", "1!0.1", "2.0", 1),
    ("pep440", "2.10", "2.9", 1),
    # maven: ComparableVersion
    ("maven", "1", "1.0.0", 0),
    ("maven", "1-ga", "1", 0),
    ("maven", "1.0-final", "1", 0),
    ("maven", "1.RELEASE", "1", 0),
    ("maven", "1a1", "1-alpha-1", 0),
    ("maven", "1-cr", "1-rc", 0),
    ("maven", "1-alpha", "1-beta", -1),
    ("maven", "1-beta", "1-milestone", -1),
    ("maven", "1-m2", "1-rc", -1),
    ("maven", "1-rc", "1-SNAPSHOT", -1),
    ("maven", "1-SNAPSHOT", "1", -1),
    ("maven", "1", "1-sp", -1),
    ("maven", "1-sp", "1-abc", -1),  # unknown qualifiers after sp
    ("maven", "1-abc", "1-1", -1),
    ("maven", "1-1", "1-2", -1),
    ("maven", "2.0", "2.0.a", -1),
    ("maven", "2.0.a", "2-1", -1),
    ("maven", "2-1", "2.0.2", -1),
    ("maven", "2.1-1", "2.1.0.1", -1),
    ("maven", "2.9", "2.10", -1),
    ("maven", "11.a2", "11.a11", -1),
    ("maven", "11.m11", "11", -1),
    ("maven", "11", "11.a", -1),
    # generic
    ("generic", "1.0", "1.0.0", 0),
    ("generic", "1.0.a", "1.0", -1),
    ("generic", "1.0.0-beta", "1.0.0", -1),
    ("generic", "1.2", "1.10", -1),
    ("generic", "1.0.0.1", "1.0.0", 1),
    ("generic", "2.0.0-rc1", "2.0.0-rc2", -1),
    ("generic", "1.0-Beta", "1.0-beta", 0),
]

INVALID = [
    ("dpkg", ""),
    ("dpkg", "1:"),
    ("dpkg", "x:1.0"),
    ("dpkg", "1.0-"),
    ("dpkg", "1 .0"),
    ("rpm", "..."),
    ("apk", "1.0bc"),
    ("apk", "1.0_foo"),
    ("apk", "1.0-x"),
    ("apk", "abc"),
    ("semver", "1.2"),
    ("semver", "01.2.3"),
    ("semver", "1.2.3-"),
    ("semver", "1.2.3-01"),
    ("semver", "1.2.3.4"),
    ("pep440", "2019-09-12"),
    ("pep440", "0.2.0-n653"),
    ("pep440", "not a version"),
    ("maven", "1 0"),
    ("generic", "-._"),
]


@pytest.mark.parametrize("name, a, b, expected", TABLE)
def test_compare(name, a, b, expected):
    module = scheme(name)
    assert module.compare(a, b) == expected
    assert module.compare(b, a) == -expected


@pytest.mark.parametrize("name, a, b, expected", TABLE)
def test_equality_and_hash_agree_with_compare(name, a, b, expected):
    x, y = scheme(name).parse(a), scheme(name).parse(b)
    assert (x == y) == (expected == 0)
    if expected == 0:
        assert hash(x) == hash(y)
        assert len({x, y}) == 1
    assert (x < y) == (expected < 0)
    assert (x >= y) == (expected >= 0)


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_sorting_is_consistent(name):
    texts = [t for s, a, b, _ in TABLE if s == name for t in (a, b)]
    module = scheme(name)
    ordered = sorted(texts, key=module.parse)
    for low, high in zip(ordered, ordered[1:]):
        assert module.compare(low, high) <= 0


@pytest.mark.parametrize("name, text", INVALID)
def test_invalid_versions_raise_invalid_version(name, text):
    with pytest.raises(InvalidVersion):
        scheme(name).parse(text)


@pytest.mark.parametrize("name", sorted(SCHEMES))
@pytest.mark.parametrize("value", [None, 12, b"1.0", ["1.0"], "1" * 300, "   "])
def test_wrong_types_and_garbage_raise_invalid_version(name, value):
    with pytest.raises(InvalidVersion):
        scheme(name).parse(value)


def test_invalid_version_is_a_value_error():
    assert issubclass(InvalidVersion, ValueError)


def test_unknown_scheme_falls_back_to_generic():
    assert scheme("no-such-scheme") is SCHEMES["generic"]


@pytest.mark.parametrize("name", sorted(SCHEMES))
@settings(max_examples=300, deadline=None, database=None)
@given(a=st.text(max_size=40), b=st.text(alphabet="0123456789.-_~^+:abprcvgit", max_size=20))
def test_any_text_parses_or_raises_invalid_version(name, a, b):
    module = scheme(name)
    parsed = []
    for text in (a, b):
        try:
            parsed.append(module.parse(text))
        except InvalidVersion:
            pass
    if len(parsed) == 2:
        x, y = parsed
        assert (x < y) + (x == y) + (x > y) == 1  # exactly one relation holds
