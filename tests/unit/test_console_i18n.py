"""The console's two dictionaries have the same keys, and every key the scripts name literally
is in them (a missing one would show its key to a user; the browser tests only see the pages
they open, in French)."""

from __future__ import annotations

import re
from pathlib import Path

JS = Path(__file__).resolve().parents[2] / "adapters" / "console" / "static" / "js"
KEY = re.compile(r"^  (\w+):\s", re.MULTILINE)


def dictionaries() -> dict[str, set[str]]:
    src = (JS / "i18n.js").read_text(encoding="utf-8")
    found = {}
    for lang in ("fr", "en"):
        body = re.search(rf"^const {lang} = \{{\n(.*?)^\}};", src, re.MULTILINE | re.DOTALL)
        assert body is not None, lang
        found[lang] = set(KEY.findall(body.group(1)))
    return found


def test_french_and_english_have_the_same_strings() -> None:
    d = dictionaries()
    assert len(d["fr"]) > 100
    assert d["fr"] - d["en"] == set(), "missing in English"
    assert d["en"] - d["fr"] == set(), "missing in French"


def test_every_key_the_scripts_name_exists() -> None:
    keys = dictionaries()["fr"]
    used: dict[str, str] = {}
    for path in JS.glob("*.js"):
        text = path.read_text(encoding="utf-8")
        for key in re.findall(r"\bt\(\"(\w+)\"", text):  # t("key", ...)
            used.setdefault(key, path.name)
        for prefix in re.findall(r"\bt\(`(\w+)_\$\{", text):  # t(`kind_${k}`): a family
            assert any(k.startswith(f"{prefix}_") for k in keys), (prefix, path.name)
    # keys handed around as values: sign-in errors, data-i18n in the page
    page = (JS.parent / "index.html").read_text(encoding="utf-8")
    used.update({k: "index.html" for k in re.findall(r'data-i18n="(\w+)"', page)})
    session = (JS / "session.js").read_text(encoding="utf-8")
    used.update({k: "session.js" for k in re.findall(r'SignInError\("(\w+)"\)', session)})
    app = (JS / "app.js").read_text(encoding="utf-8")
    used.update({k: "app.js" for k in re.findall(r'(?:showSignIn|signOut)\("(\w+)"\)', app)})
    missing = {k: where for k, where in used.items() if k not in keys}
    assert missing == {}
