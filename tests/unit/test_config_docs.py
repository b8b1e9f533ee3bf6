"""The configuration reference is generated from the settings: it must be current, and
every setting must explain itself."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_config_docs", REPO / "scripts" / "gen_config_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_reference_is_current():
    gen = load_generator()
    checked_in = (REPO / "docs" / "configuration.md").read_text()
    assert checked_in == gen.render(), (
        "docs/configuration.md is out of date with the settings: run `make docs` and commit it"
    )


def test_every_setting_has_help():
    gen = load_generator()
    classes = gen.configurable_classes()
    names = {cls.__name__ for cls in classes}
    # the classes a site configures are all there
    assert {"SpacesSettings", "SpacesService", "DemoAuthenticator", "SpacesOAuthenticator"} <= names
    missing = [
        f"{cls.__name__}.{name}"
        for cls in classes
        for name, trait in cls.class_own_traits(config=True).items()
        if not (trait.help or "").strip()
    ]
    assert missing == [], f"settings without help=: {missing}"
