"""The `maskgit` command as a whole: help texts and error conventions."""


def test_every_option_has_help_and_defaults_and_required_options_are_shown():
    from maskgit.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, command in sub.choices.items():
        for action in command._actions:
            assert action.help, (name, action.dest)
        text = command.format_help()
        for action in command._actions:
            if action.required and action.option_strings:
                assert "(required)" in text, name
    assert "(default: 12)" not in sub.choices["inpaint"].format_help()  # unset sampling options come from the model
    assert "(default: 64)" in sub.choices["inpaint"].format_help()


def test_inpaint_help_states_the_shipped_models_own_defaults(capsys):
    import json

    import pytest

    from maskgit.cli import main
    from maskgit.pipeline import ASSETS_DIR

    shipped = json.loads((ASSETS_DIR / "catface64" / "sampling.json").read_text())
    with pytest.raises(SystemExit):
        main(["inpaint", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert f"--prefill {shipped['prefill']}" in text and f"--pixel-evidence {shipped['pixel_evidence']:g}" in text
    assert "default is gray" not in text
