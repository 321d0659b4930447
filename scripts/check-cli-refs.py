#!/usr/bin/env python3
"""Check that deployment files pass gwen-segment only subcommands, flags and variables it has.

Reads rendered Kubernetes manifests (`manifests FILE`) or a Compose file (`compose FILE`) and
finds every container that runs the gwen-segment binary. Its subcommand, its `--flag` arguments
and its environment variable names are compared with `gwen-segment <subcommand> --help`, where
clap lists each variable as `[env: NAME=...]`. The names come from `env` and from the keys of the
ConfigMaps and Secrets named in `envFrom`. Exits 1 when anything is missing from the binary.

Needs PyYAML. Used by scripts/check-deploy.
"""

import argparse
import re
import shlex
import subprocess
import sys

import yaml

# Read by the logging setup and the OpenTelemetry SDK, not by clap, so `--help` does not list
# them as variables.
DEFAULT_ALLOWED_ENV = (
    "RUST_LOG",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
)

HELP_ENV = re.compile(r"\[env: ([A-Z0-9_]+)[=\]]")
HELP_FLAG = re.compile(r"^\s+(?:-[A-Za-z], )?(--[a-z0-9][a-z0-9-]*)", re.MULTILINE)

POD_SPEC_PATHS = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}


class HelpIndex:
    """The flags and variables of each subcommand, from the binary's own --help output."""

    def __init__(self, binary):
        self.binary = binary
        self.cache = {}

    def lookup(self, subcommand):
        """Return (flags, env names) of a subcommand, or None when its --help fails."""
        if subcommand not in self.cache:
            result = subprocess.run(
                [self.binary, subcommand, "--help"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            if result.returncode != 0:
                self.cache[subcommand] = None
            else:
                flags = set(HELP_FLAG.findall(result.stdout))
                env = set(HELP_ENV.findall(result.stdout))
                self.cache[subcommand] = (flags, env)
        return self.cache[subcommand]


class Checker:
    def __init__(self, help_index, allowed_env):
        self.help = help_index
        self.allowed_env = set(allowed_env)
        self.errors = []

    def check(self, where, argv, env_names):
        """Check one container: argv is the binary's arguments, env_names its variable names."""
        if not argv:
            self.errors.append(f"{where}: no subcommand given to gwen-segment")
            return
        subcommand = argv[0]
        found = self.help.lookup(subcommand)
        if found is None:
            self.errors.append(
                f"{where}: `gwen-segment {subcommand} --help` fails: "
                f"{subcommand!r} is not a subcommand of {self.help.binary}"
            )
            return

        flags, help_env = found
        errors_before = len(self.errors)
        passed_flags = [arg.split("=", 1)[0] for arg in argv[1:] if arg.startswith("--")]
        for flag in passed_flags:
            if flag not in flags:
                self.errors.append(f"{where}: flag {flag} is not in `gwen-segment {subcommand} --help`")
        for name in sorted(env_names):
            if name not in help_env and name not in self.allowed_env:
                self.errors.append(
                    f"{where}: variable {name} is not in `gwen-segment {subcommand} --help`"
                )
        status = "ok  " if len(self.errors) == errors_before else "FAIL"
        print(
            f"{status}  {where}: `{subcommand}`, {len(passed_flags)} flags, "
            f"{len(env_names)} variables checked"
        )


def dig(document, path):
    for key in path:
        if not isinstance(document, dict) or key not in document:
            return None
        document = document[key]
    return document


def binary_argv(container):
    """Return the gwen-segment arguments of a container, or None if it runs something else."""
    command = container.get("command")
    args = container.get("args") or []
    if not command:
        # The image's entrypoint is the binary (see the Dockerfile).
        return list(args)
    if command[0].endswith("gwen-segment"):
        return list(command[1:]) + list(args)
    return None


def check_manifests(path, checker):
    with open(path, encoding="utf-8") as file:
        documents = [doc for doc in yaml.safe_load_all(file) if isinstance(doc, dict)]

    config_maps = {}
    secrets = {}
    for doc in documents:
        name = dig(doc, ("metadata", "name"))
        if doc.get("kind") == "ConfigMap":
            config_maps[name] = set((doc.get("data") or {}).keys())
        elif doc.get("kind") == "Secret":
            secrets[name] = set((doc.get("data") or {}).keys()) | set((doc.get("stringData") or {}).keys())

    containers_seen = 0
    for doc in documents:
        kind = doc.get("kind")
        pod_spec = dig(doc, POD_SPEC_PATHS[kind]) if kind in POD_SPEC_PATHS else None
        if not pod_spec:
            continue
        for container in (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or []):
            where = f"{path}: {kind}/{dig(doc, ('metadata', 'name'))} container {container.get('name')}"
            argv = binary_argv(container)
            if argv is None:
                print(f"NOTE  {where}: skipped, its command is not gwen-segment")
                continue
            containers_seen += 1
            env_names = {entry["name"] for entry in container.get("env") or []}
            for source in container.get("envFrom") or []:
                env_names |= env_from_names(where, source, config_maps, secrets, checker)
            checker.check(where, argv, env_names)

    if containers_seen == 0:
        checker.errors.append(f"{path}: no gwen-segment container found")


def env_from_names(where, source, config_maps, secrets, checker):
    prefix = source.get("prefix", "")
    for field, rendered, kind in (
        ("configMapRef", config_maps, "ConfigMap"),
        ("secretRef", secrets, "Secret"),
    ):
        reference = source.get(field)
        if not reference:
            continue
        name = reference.get("name")
        if name in rendered:
            return {prefix + key for key in rendered[name]}
        if reference.get("optional"):
            return set()
        checker.errors.append(
            f"{where}: envFrom names {kind} {name}, which the rendered manifests do not contain, "
            "so its variable names cannot be checked"
        )
    return set()


def check_compose(path, checker):
    with open(path, encoding="utf-8") as file:
        compose = yaml.safe_load(file)

    services_seen = 0
    for name, service in (compose.get("services") or {}).items():
        image = str(service.get("image", ""))
        if "build" not in service and not image.split("/")[-1].startswith("gwen-segment"):
            continue
        where = f"{path}: service {name}"
        if service.get("entrypoint"):
            print(f"NOTE  {where}: skipped, it replaces the image's entrypoint")
            continue
        if service.get("env_file"):
            checker.errors.append(f"{where}: env_file is not supported by this check")
        command = service.get("command") or []
        argv = shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]
        environment = service.get("environment") or {}
        if isinstance(environment, dict):
            env_names = set(environment.keys())
        else:
            env_names = {entry.split("=", 1)[0] for entry in environment}
        services_seen += 1
        checker.check(where, argv, env_names)

    if services_seen == 0:
        checker.errors.append(f"{path}: no gwen-segment service found")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, help="path of the gwen-segment binary")
    parser.add_argument(
        "--allow-env",
        action="append",
        default=list(DEFAULT_ALLOWED_ENV),
        metavar="NAME",
        help="a variable the binary reads without listing it in --help (default: RUST_LOG)",
    )
    parser.add_argument("format", choices=["manifests", "compose"])
    parser.add_argument("file")
    options = parser.parse_args()

    checker = Checker(HelpIndex(options.binary), options.allow_env)
    if options.format == "manifests":
        check_manifests(options.file, checker)
    else:
        check_compose(options.file, checker)

    for error in checker.errors:
        print(f"ERROR {error}", file=sys.stderr)
    return 1 if checker.errors else 0


if __name__ == "__main__":
    sys.exit(main())
