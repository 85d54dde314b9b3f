"""``clearance completion SHELL``: print the shell completion script.

eval "$(clearance completion bash)"      # add to ~/.bashrc
eval "$(clearance completion zsh)"       # add to ~/.zshrc
clearance completion fish > ~/.config/fish/completions/clearance.fish
"""

from __future__ import annotations

import click


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish)."""
    from click.shell_completion import get_completion_class

    from cli.main import cli

    completer = get_completion_class(shell)
    assert completer is not None
    click.echo(completer(cli, {}, "clearance", "_CLEARANCE_COMPLETE").source())
