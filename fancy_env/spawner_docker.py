"""`FancyDockerSpawner`: DockerSpawner with KubeSpawner's `profile_list` and fancy_env's validator.

One machine, no cluster: the admin writes the same `profile_list` as for KubeSpawner; the
`kubespawner_override` keys this spawner can honour are listed in `DOCKER_OVERRIDE_KEYS`.
Any other key is a configuration error when the hub starts (not a surprise at spawn time).

Networking default: **host networking on a random loopback port**. The container shares the
host's network, the single-user server listens on `127.0.0.1:<random free port>`, and the
hub reaches it there. No Docker bridge is involved. Set `network_name` to use a Docker
network instead (DockerSpawner's own behaviour then applies).
"""

from __future__ import annotations

from typing import Any

from dockerspawner import DockerSpawner
from jupyterhub.utils import random_port
from traitlets import Callable as CallableTrait
from traitlets import Dict as DictTrait
from traitlets import List as ListTrait
from traitlets import TraitError, Unicode, Union, default

from .profiles import Profile, ProfileConfigError
from .spawner_base import FancySpawnerMixin

#: kubespawner_override keys FancyDockerSpawner honours, and what each does here.
DOCKER_OVERRIDE_KEYS: dict[str, str] = {
    "image": "the container image",
    "mem_limit": "memory limit, enforced by Docker (e.g. '2G')",
    "cpu_limit": "CPU limit, enforced by Docker as a CPU quota (e.g. 1.5)",
    "mem_guarantee": "only exposed to the server as MEM_GUARANTEE; Docker reserves nothing",
    "cpu_guarantee": "only exposed to the server as CPU_GUARANTEE; Docker reserves nothing",
    "environment": "environment variables (dict, merged)",
    "volumes": "host path or volume name -> container path (dict, merged)",
    "read_only_volumes": "like volumes, mounted read-only (dict, merged)",
    "mounts": "docker-py Mount objects (list)",
    "extra_host_config": "extra docker host_config (dict, merged)",
    "extra_create_kwargs": "extra docker create_container arguments (dict, merged)",
    "default_url": "URL the server opens, e.g. '/lab'",
    "notebook_dir": "the server's root directory",
    "cmd": "command that starts the single-user server",
    "args": "extra arguments for the single-user server",
    "disable_user_config": "ignore the user's ~/.jupyter config",
    "debug": "debug logging in the single-user server",
    "start_timeout": "seconds to wait for the container to start",
    "http_timeout": "seconds to wait for the server to answer",
    "pull_policy": "when to pull the image (ifnotpresent, always, never, skip)",
    "post_start_cmd": "command run in the container after it starts",
}


class FancyDockerSpawner(FancySpawnerMixin, DockerSpawner):
    """DockerSpawner driven by a KubeSpawner-style `profile_list`, validated on every door.

    The image always comes from the admin's profile (or a build the build service confirms);
    `user_options["image"]` is never used as an image (with a profile option named `image`
    it is a choice key).
    """

    profile_list = Union(
        [ListTrait(DictTrait()), CallableTrait(), DictTrait()],
        default_value=[],
        config=True,
        help="""Profiles offered to users, in KubeSpawner's `profile_list` format (list of
        dicts, dict, or a callable / async callable taking the spawner and returning one).
        Overrides are still written under `kubespawner_override`; only the keys listed in
        `fancy_env.spawner_docker.DOCKER_OVERRIDE_KEYS` are honoured, any other key stops
        the hub at start-up. Extra keys: `allowed_users`, `allowed_groups` (on profiles and
        choices) and `repository_build` (see docs/spawners.md).""",
    )

    loopback_ip = Unicode(
        "127.0.0.1",
        config=True,
        help="""With host networking (the default), the address the single-user server
        listens on and the hub connects to. Keep a loopback address unless the hub runs on
        another machine than the containers.""",
    )

    @default("network_name")
    def _fancy_network_name_default(self) -> str:
        return "host"

    @default("use_internal_ip")
    def _fancy_use_internal_ip_default(self) -> bool:
        return True

    @default("remove")
    def _fancy_remove_default(self) -> bool:
        # a new container per start: the chosen profile (image, limits) may differ each time
        return True

    @property
    def fancy_host_network(self) -> bool:
        return self.network_name == "host"

    @classmethod
    def fancy_check_profiles(cls, profiles: tuple[Profile, ...]) -> None:
        """Refuse override keys this spawner cannot honour, and values of the wrong type."""
        from .overrides import override_keys

        traits = cls.class_traits()
        probe = cls()  # some traits validate only against an instance; creating one is cheap
        for i, profile in enumerate(profiles):
            for key, paths in override_keys(profile).items():
                if key not in DOCKER_OVERRIDE_KEYS:
                    raise ProfileConfigError(
                        f"{profile.path or f'profile_list[{i}]'}.{paths[0]}",
                        f"FancyDockerSpawner cannot honour {key!r}. Honoured keys: "
                        f"{', '.join(sorted(DOCKER_OVERRIDE_KEYS))}.",
                    )
            for path, key, value in _fixed_values(profile):
                if callable(value) or key not in traits:
                    continue
                try:
                    traits[key].validate(probe, value)
                except TraitError as e:
                    base = profile.path or f"profile_list[{i}]"
                    raise ProfileConfigError(f"{base}.{path}", str(e)) from None
                except Exception:  # noqa: BLE001 - a trait needing an instance: skip the check
                    continue

    async def check_allowed(self, image: str) -> str:
        # DockerSpawner.start reads user_options["image"]; here that is at most a choice key
        # already resolved by load_user_options, so the image is the one the profile set.
        return str(self.image)

    async def start(self) -> Any:
        await self.load_user_options()
        if self.fancy_host_network:
            self.ip = self.loopback_ip
            self.port = random_port()
        return await super().start()

    def get_args(self) -> list[str]:
        args = list(super().get_args())
        if self.fancy_host_network:
            # JupyterHub also passes JUPYTERHUB_SERVICE_URL; the flags cover images whose
            # CMD sets its own --ip/--port (e.g. repo2docker's)
            args += [f"--ip={self.ip}", f"--port={self.port}"]
        return args

    async def get_ip_and_port(self) -> tuple[str, int]:
        if self.fancy_host_network:
            return self.ip, self.port
        ip, port = await super().get_ip_and_port()
        return ip, port

    def get_state(self) -> dict[str, Any]:
        state = dict(super().get_state())
        if self.fancy_host_network and self.port:
            state["fancy_port"] = self.port
            state["fancy_ip"] = self.ip
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        if state.get("fancy_port"):
            self.port = int(state["fancy_port"])
            self.ip = str(state.get("fancy_ip") or self.loopback_ip)


def _fixed_values(profile: Profile) -> list[tuple[str, str, Any]]:
    """(path, key, value) for override values known at config time (not `{value}` ones)."""
    found = [(f"kubespawner_override.{k}", k, v) for k, v in profile.override.items()]
    for option in profile.options:
        for choice in option.choices:
            base = f"profile_options.{option.name}.choices.{choice.key}.kubespawner_override"
            found += [(f"{base}.{k}", k, v) for k, v in choice.override.items()]
    base = "repository_build.kubespawner_override"
    found += [(f"{base}.{k}", k, v) for k, v in profile.repository_build.override.items()]
    return found
