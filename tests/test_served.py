"""The served-model list is asked once and kept until the stack changes."""

from __future__ import annotations

import os

from docstack.stack.served import ServedModels


class CountingClient:
    """Stands in for StackClient.models(): answers what the stack serves, counting the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.serving = ["llamacpp/a"]

    def models(self) -> list[str]:
        self.calls += 1
        return list(self.serving)


def test_the_list_is_kept_until_the_run_config_changes_or_it_is_forgotten(tmp_path):
    run_config = tmp_path / "run.yaml"
    run_config.write_text("models: [a]\n")
    client = CountingClient()
    served = ServedModels(client, run_config)
    assert served.ids() == {"llamacpp/a"} and served.ids() == {"llamacpp/a"} and client.calls == 1
    client.serving = ["llamacpp/b"]
    run_config.write_text("models: [a, b]\n")  # `docstack up` wrote a new run config
    os.utime(run_config, ns=(1, 1))
    assert served.ids() == {"llamacpp/b"} and client.calls == 2
    served.forget()  # a model failed
    client.serving = ["llamacpp/c"]
    assert served.ids() == {"llamacpp/c"} and client.calls == 3


def test_without_a_run_config_the_list_is_asked_again_after_its_age(tmp_path):
    client = CountingClient()
    served = ServedModels(client, tmp_path / "absent.yaml", max_age=0.0)
    served.ids()
    served.ids()
    assert client.calls == 2
    assert ServedModels(client, tmp_path / "absent.yaml").ids() and client.calls == 3
