"""FancyKubeSpawner is a drop-in: for KubeSpawner's documented profile_list examples and the
same valid choices, `get_pod_manifest()` equals KubeSpawner's.

No API server exists here: a dummy KUBECONFIG pointing at a closed loopback port lets
KubeSpawner construct its client (inside a running event loop); get_pod_manifest() never
calls the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from tests.support.kubespawner_examples import DOC_DICT_EXAMPLE, DOC_LIST_EXAMPLE, Z2JH_EXAMPLE

DUMMY_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: dummy
  cluster: {server: "https://127.0.0.1:9"}
contexts:
- name: dummy
  context: {cluster: dummy, user: dummy, namespace: jhub}
current-context: dummy
users:
- name: dummy
  user: {token: not-a-real-token}
"""

CASES: list[tuple[str, Any, dict[str, str]]] = [
    ("list-default", DOC_LIST_EXAMPLE, {}),
    ("list-demo-1", DOC_LIST_EXAMPLE, {"profile": "demo-1"}),
    ("list-base", DOC_LIST_EXAMPLE, {"profile": "demo-1", "image": "base"}),
    ("list-minimal", DOC_LIST_EXAMPLE, {"profile": "demo-1", "image": "minimal"}),
    (
        "list-unlisted",
        DOC_LIST_EXAMPLE,
        {"profile": "demo-1", "image--unlisted-choice": "jupyter/scipy-notebook:2024-03-14"},
    ),
    ("list-demo-2", DOC_LIST_EXAMPLE, {"profile": "demo-2"}),
    ("dict-default", DOC_DICT_EXAMPLE, {}),
    ("dict-demo-1", DOC_DICT_EXAMPLE, {"profile": "demo-1", "image": "base"}),
    ("dict-demo-2", DOC_DICT_EXAMPLE, {"profile": "demo-2"}),
    ("z2jh-default", Z2JH_EXAMPLE, {}),
    ("z2jh-datascience", Z2JH_EXAMPLE, {"profile": "datascience-environment"}),
    ("z2jh-gpu-default", Z2JH_EXAMPLE, {"profile": "gpu-server"}),
    ("z2jh-gpu-large", Z2JH_EXAMPLE, {"profile": "gpu-server", "memory": "large"}),
]


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(DUMMY_KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    # kubernetes_asyncio reads KUBECONFIG when first imported: patch the value it kept too
    from kubernetes_asyncio.config import kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    for var in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(var, raising=False)
    return path


async def manifest(cls: type, profile_list: Any, user_options: dict[str, str]) -> Any:
    c = Config()
    c.KubeSpawner.profile_list = profile_list  # the admin's unchanged KubeSpawner config
    c.KubeSpawner.image = "quay.io/jupyter/base-notebook:latest"
    c.KubeSpawner.environment = {"FROM_CONFIG": "1"}
    spawner = cls(_mock=True, config=c)
    spawner.user_options = dict(user_options)
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    return spawner.api.api_client.sanitize_for_serialization(pod)


@pytest.mark.parametrize(("name", "profile_list", "user_options"), CASES, ids=[c[0] for c in CASES])
async def test_manifest_equals_kubespawner(
    kubeconfig: Path, name: str, profile_list: Any, user_options: dict[str, str]
) -> None:
    from kubespawner import KubeSpawner

    from fancy_env.spawner_kube import FancyKubeSpawner

    theirs = await manifest(KubeSpawner, profile_list, user_options)
    ours = await manifest(FancyKubeSpawner, profile_list, user_options)
    assert ours == theirs
    container = ours["spec"]["containers"][0]
    assert container["image"]  # sanity: a real manifest was compared


async def test_kubespawner_would_have_taken_the_bad_value(kubeconfig: Path) -> None:
    """The REST hole, end to end: same input, KubeSpawner builds a pod, we refuse."""
    from kubespawner import KubeSpawner

    from fancy_env.spawner_base import OptionsRefused
    from fancy_env.spawner_kube import FancyKubeSpawner

    bad = {"image--unlisted-choice": "evil.example/miner:latest"}
    theirs = await manifest(KubeSpawner, DOC_LIST_EXAMPLE, bad)
    assert theirs["spec"]["containers"][0]["image"] == "evil.example/miner:latest"
    with pytest.raises(OptionsRefused, match="Must be an image matching"):
        await manifest(FancyKubeSpawner, DOC_LIST_EXAMPLE, bad)
