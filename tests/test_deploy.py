"""The deployment files, checked without a Docker engine or a helm binary (docs/deploy.md).

- The Helm chart is linted and rendered by Helm's own Go engine (helm-python-sdk embeds Helm's
  SDK: the same template functions, values coalescing and lint rules as ``helm template`` /
  ``helm lint``), and every rendered manifest is validated against the Kubernetes OpenAPI
  schemas shipped in kubernetes-validate (strict: unknown fields are errors). Then what the
  schemas cannot know: probes on /health at the role's port, resource requests, non-root, the
  Secret references, Services selecting their pods, the settings ConfigMap loading with the
  real settings loader, each role's command line parsed by the real ``arb``.
- docker-compose.yml is parsed by the compose specification's typed parser (compose-spec,
  unknown keys are errors), then checked: images/builds, healthchecks, role commands, ports,
  mounts that exist, every ``${VAR}`` named in .env.example.
- The Dockerfile is parsed by BuildKit's parser (the ``dockerfile`` package): non-root USER,
  HEALTHCHECK running the health probe, COPY sources that exist, the entry point.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "infra" / "helm" / "cryptoarb"
K8S = "1.30.0"
ROLES = {"engine", "recorder", "analytics", "api"}
REQUIRED_VARS = {"JWT_SECRET", "PGHOST", "PGUSER", "PGPASSWORD", "PGDATABASE", "SENTRY_DSN", "VITE_SENTRY_DSN",
                 "CRYPTOARB_BINANCE_API_KEY", "CRYPTOARB_BINANCE_API_SECRET"}


class _StrictLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (the API server refuses it too)."""


def _no_dupes(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for k, _ in node.value:
        if k.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(k, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", k.start_mark)
        seen.add(key)
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node, deep=deep))


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_dupes)


def strict_yaml(text: str) -> list[Any]:
    return [d for d in yaml.load_all(text, Loader=_StrictLoader) if d is not None]


def env_example() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)=", line)
        if m:
            names.add(m[1])
    return names


def parses(argv: list[str]) -> None:
    """The real ``arb`` command line accepts ``argv`` (nothing runs)."""
    import typer.main

    from cryptoarb.cli import app

    cmd = typer.main.get_command(app)
    ctx = cmd.make_context("arb", list(argv), resilient_parsing=False)
    sub = cmd.get_command(ctx, argv[0])  # type: ignore[attr-defined]
    assert sub is not None, argv
    sub.make_context(argv[0], list(argv[1:]), parent=ctx)


def check_deploy_command(argv: list[str]) -> str:
    """A documented docker / helm / kubectl / kubeseal / cp command, checked against the files it
    names (nothing runs: no Docker engine, cluster or helm binary here)."""
    prog, *args = argv
    words = [a for i, a in enumerate(args) if a not in ("<", ">") and (i == 0 or args[i - 1] not in ("<", ">"))]
    if prog == "cp":
        assert (ROOT / words[0]).is_file(), words[0]
        return "source file exists"
    if prog == "docker" and words[:1] == ["compose"]:
        compose()
        return "docker-compose.yml parsed and checked (test_compose_*)"
    if prog == "docker" and words[:1] == ["build"]:
        assert words[-1] == "." and (ROOT / "Dockerfile").is_file()
        import dockerfile

        args_declared = {c.value[0].split("=")[0] for c in dockerfile.parse_file(str(ROOT / "Dockerfile"))
                         if c.cmd == "ARG"}
        for i, a in enumerate(words):
            if a == "--build-arg":
                assert words[i + 1].split("=")[0] in args_declared, words[i + 1]
        return "Dockerfile parsed, build args declared"
    if prog == "docker" and words[:1] == ["run"]:
        image = next(a for a in words[1:] if not a.startswith("-") and words[words.index(a) - 1] != "--env-file")
        role_args = words[words.index(image) + 1:]
        assert role_args[0] in ROLES, role_args
        parses(role_args)  # the role is the command: the real arb accepts it
        return "role command parsed by arb"
    if prog == "helm":
        assert words[0] in ("install", "upgrade", "template"), words
        chart = next(a for a in words[1:] if "/" in a and not a.startswith("-") and "=" not in a)
        assert (ROOT / chart / "Chart.yaml").is_file(), chart
        values: dict[str, Any] = {}
        for i, a in enumerate(words):
            if a == "--set":
                key, _, val = words[i + 1].partition("=")
                node = values
                *path, last = key.split(".")
                for p in path:
                    node = node.setdefault(p, {})
                node[last] = val
        defaults = yaml.safe_load((CHART / "values.yaml").read_text())
        for key in values:
            assert key in defaults, f"--set {key}: not a value of the chart"
        for d in render(values):
            k8s_validate(d)
        return "rendered with these values by Helm's engine, validated"
    if prog == "kubectl":
        assert words[:3] == ["create", "secret", "generic"] and words[3] == "cryptoarb-secrets", words
        env_file = next(a.split("=", 1)[1] for a in words if a.startswith("--from-env-file="))
        assert env_file == ".env" and (ROOT / ".env.example").is_file()
        assert yaml.safe_load((CHART / "values.yaml").read_text())["secrets"]["name"] == words[3]
        return "Secret name is the chart's; keys from .env (.env.example)"
    if prog == "kubeseal":
        assert "--format" in words
        return "kubeseal reads the Secret made above (no controller here)"
    raise AssertionError(f"no check for documented command {argv}")


# -- Helm ------------------------------------------------------------------------------------------

def render(values: dict[str, Any] | None = None, release: str = "prod") -> list[dict[str, Any]]:
    import helm_python as helm

    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(values or {}, name=release, namespace="trading")
    docs = []
    for name, text in sorted(out.items()):
        if name.endswith(".yaml"):
            docs += strict_yaml(text)
    return docs


def k8s_validate(doc: dict[str, Any]) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(doc, K8S, strict=True)


def test_chart_lints_clean() -> None:
    import helm_python as helm

    report = helm.lint(str(CHART), strict=True, kube_version=K8S)  # strict: warnings are errors
    assert report["errors"] == [], report
    assert all(m["severity"] < 2 for m in report["messages"]), report  # info only (e.g. "icon is recommended")


def test_chart_renders_valid_kubernetes_objects() -> None:
    docs = render()
    kinds = [d["kind"] for d in docs]
    assert kinds.count("Deployment") == 5 and kinds.count("Service") == 5 and kinds.count("ConfigMap") == 1
    assert kinds.count("PersistentVolumeClaim") == 1
    for d in docs:
        k8s_validate(d)


def test_the_validator_is_not_vacuous() -> None:
    import kubernetes_validate

    dep = next(d for d in render() if d["kind"] == "Deployment")
    bad = yaml.safe_load(yaml.safe_dump(dep))
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        k8s_validate(bad)
    bad = yaml.safe_load(yaml.safe_dump(dep))
    bad["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/health"
    with pytest.raises(kubernetes_validate.ValidationError):
        k8s_validate(bad)
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key"):
        strict_yaml("a: 1\nb: 2\na: 3\n")


def _deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in docs if d["kind"] == "Deployment"}


def test_every_role_runs_probed_on_health_with_requests_as_non_root() -> None:
    from cryptoarb.obs.health import health_url

    docs = render()
    deps = _deployments(docs)
    assert set(deps) == {"engine-usdm", "engine-coinm", "recorder", "analytics", "api"}
    secret_keys: set[str] = set()
    for name, dep in deps.items():
        pod = dep["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        assert c["args"][0] in ROLES and c["args"][1:3] == ["--config", "/etc/cryptoarb/arb.toml"]
        parses(c["args"])  # the real command line accepts the role's arguments
        port = c["ports"][0]["containerPort"]
        assert c["ports"][0]["name"] == "http"
        # the port the role listens on is the one the probes and Prometheus use
        assert health_url(c["args"]) == f"http://127.0.0.1:{port}/health", name
        for probe in ("livenessProbe", "readinessProbe"):
            assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}, (name, probe)
        assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert dep["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        env = {e["name"]: e for e in c["env"]}
        for var in ("PGHOST", "PGUSER", "PGPASSWORD", "PGDATABASE", "SENTRY_DSN"):
            assert var in env, (name, var)
        for e in env.values():
            if "valueFrom" in e:
                ref = e["valueFrom"]["secretKeyRef"]
                assert ref["name"] == "cryptoarb-secrets" and ref["key"] == e["name"]
                secret_keys.add(e["name"])
            else:
                assert not any(s in e["name"] for s in ("PASSWORD", "SECRET", "DSN", "KEY")), e  # no secret inline
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert "/etc/cryptoarb" in mounts and "/data" in mounts
    assert "JWT_SECRET" in {e["name"] for e in deps["api"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "--bus" in deps["api"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert secret_keys <= env_example(), secret_keys - env_example()  # every secret key is documented


def test_services_select_their_pods() -> None:
    docs = render()
    deps = _deployments(docs)
    for svc in (d for d in docs if d["kind"] == "Service"):
        comp = svc["metadata"]["labels"]["app.kubernetes.io/component"]
        pod = deps[comp]["spec"]["template"]
        sel = svc["spec"]["selector"]
        assert sel.items() <= pod["metadata"]["labels"].items()
        assert sel == deps[comp]["spec"]["selector"]["matchLabels"]
        # no other role's pods are selected
        assert all(not (sel.items() <= d["spec"]["template"]["metadata"]["labels"].items())
                   for c, d in deps.items() if c != comp)
        names = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
        assert all(p["targetPort"] in names for p in svc["spec"]["ports"])


def test_settings_configmap_loads_with_the_real_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptoarb.config import load_settings

    for k in [k for k in __import__("os").environ if k.startswith("ARB_")]:
        monkeypatch.delenv(k)
    (cm,) = [d for d in render() if d["kind"] == "ConfigMap"]
    f = tmp_path / "arb.toml"
    f.write_text(cm["data"]["arb.toml"])
    s = load_settings(f)  # strict: an unknown key fails here
    assert set(s.bus.shards) == {"usdm", "coinm"} and s.bus.metrics_host == "0.0.0.0"
    assert s.storage.url == "postgresql:///"  # libpq's PG* variables from the Secret and env
    for dep in _deployments(render()).values():
        args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        if "--shard" in args:
            assert args[args.index("--shard") + 1] in s.bus.shards


def test_values_change_what_renders() -> None:
    docs = render({"roles": {"analytics": {"enabled": False}, "api": {"replicas": 3}},
                   "image": {"repository": "registry.example/cryptoarb", "tag": "1.2.3"},
                   "secrets": {"name": "sealed-arb"}}, release="cryptoarb")
    deps = _deployments(docs)
    assert "analytics" not in deps and deps["api"]["spec"]["replicas"] == 3
    assert deps["api"]["metadata"]["name"] == "cryptoarb-api"  # the release name is not repeated
    c = deps["recorder"]["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "registry.example/cryptoarb:1.2.3"
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in c["env"] if "valueFrom" in e} == {"sealed-arb"}
    for d in docs:
        k8s_validate(d)


# -- docker-compose ----------------------------------------------------------------------------------

def compose() -> dict[str, Any]:
    import compose_spec

    text = (ROOT / "docker-compose.yml").read_text()
    strict_yaml(text)  # no duplicate keys
    c = compose_spec.PyOptions(apply_merge=True).from_yaml(text)  # the spec's typed parser: unknown keys fail
    c.validate()  # networks, volumes, configs, secrets referenced are defined
    return c.to_dict()


def test_compose_parses_and_every_service_is_complete() -> None:
    c = compose()
    services = c["services"]
    assert {"redis", "postgres", "prometheus", "grafana", "recorder", "analytics", "api", "engine-usdm",
            "engine-coinm"} <= set(services)
    for name, svc in services.items():
        assert svc.get("image") or svc.get("build"), name
        assert svc.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
        for dep in svc.get("depends_on", {}):
            assert dep in services, (name, dep)
            assert "healthcheck" in services[dep]  # condition: service_healthy needs one
        for vol in svc.get("volumes", []):
            src = vol["source"] if isinstance(vol, dict) else vol.split(":")[0]
            if src.startswith("./"):
                assert (ROOT / src).exists(), f"{name}: mounts {src}, which is not in the repository"


def test_compose_roles_are_real_commands_on_their_ports() -> None:
    from cryptoarb.obs.health import health_url

    services = compose()["services"]
    roles = {n: s for n, s in services.items() if s.get("build")}
    assert {s["command"][0] for s in roles.values()} == ROLES
    assert sum(s["command"][0] == "engine" for s in roles.values()) == 2
    for name, svc in roles.items():
        parses(svc["command"])
        port = int(health_url(svc["command"]).rsplit(":", 1)[1].split("/")[0])  # type: ignore[union-attr]
        published = {str(p).split(":")[-1] for p in svc.get("expose", [])} | {
            str(p.get("target") if isinstance(p, dict) else p).split(":")[-1] for p in svc.get("ports", [])}
        assert str(port) in published, (name, port, published)
        assert svc["healthcheck"]["test"][-2:] == ["-m", "cryptoarb.obs.health"]
        assert "/etc/cryptoarb/arb.toml" in svc["command"]
    # Prometheus scrapes each role where it listens
    prom = yaml.safe_load((ROOT / "infra/compose/prometheus.yml").read_text())
    for job in prom["scrape_configs"]:
        for sc in job["static_configs"]:
            for target in sc["targets"]:
                host, port = target.rsplit(":", 1)
                assert host in roles, target
                assert health_url(roles[host]["command"]) == f"http://127.0.0.1:{port}/health", target


def test_compose_settings_load_and_every_variable_is_documented(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptoarb.config import load_settings

    for k in [k for k in __import__("os").environ if k.startswith("ARB_")]:
        monkeypatch.delenv(k)
    s = load_settings(ROOT / "infra/compose/arb.toml")
    assert s.bus.url == "redis://redis:6379/0" and s.api.host == "0.0.0.0"
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    documented = env_example()
    assert used <= documented, f"not in .env.example: {sorted(used - documented)}"
    assert documented >= REQUIRED_VARS, sorted(REQUIRED_VARS - documented)
    assert ".env" in (ROOT / ".gitignore").read_text().split() and ".env" in (ROOT / ".dockerignore").read_text()


# -- Dockerfile ----------------------------------------------------------------------------------------

def test_dockerfile_parses_non_root_healthcheck_and_sources_exist() -> None:
    import dockerfile

    cmds = dockerfile.parse_file(str(ROOT / "Dockerfile"))
    stages = [i for i, c in enumerate(cmds) if c.cmd == "FROM"]
    assert len(stages) >= 3  # dashboard (node), build, runtime
    final = cmds[stages[-1]:]
    users = [c.value[0] for c in final if c.cmd == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    (hc,) = [c for c in final if c.cmd == "HEALTHCHECK"]
    assert hc.value[0] == "CMD" and "cryptoarb.obs.health" in " ".join(hc.value)
    assert any(f.startswith("--interval=") for f in hc.flags)
    (ep,) = [c for c in final if c.cmd == "ENTRYPOINT"]
    assert ep.json and ep.value == ("arb",)
    assert 'arb = "cryptoarb.cli:main"' in (ROOT / "pyproject.toml").read_text()
    exposed = {p for c in final if c.cmd == "EXPOSE" for p in c.value}
    assert {"8000", "9101", "9102", "9103"} <= exposed
    ignored = (ROOT / ".dockerignore").read_text().split()
    for c in cmds:
        if c.cmd in ("COPY", "ADD") and not any(f.startswith("--from=") for f in c.flags):
            for src in c.value[:-1]:
                assert src == "." or (ROOT / src).exists(), f"line {c.start_line}: COPY {src}: not in the repository"
                assert src.rstrip("/") not in ignored, f"COPY {src} is excluded by .dockerignore"
    froms = [cmds[i].value for i in stages]
    assert froms[0][0].startswith("${NODE_IMAGE}") and "requirements.lock" in " ".join(
        v for c in cmds for v in c.value)


# -- the health probe the image runs ----------------------------------------------------------------

def test_health_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptoarb.obs import health
    from cryptoarb.obs.metrics import Metrics, MetricsServer

    assert health.health_url(["/opt/venv/bin/python", "/opt/venv/bin/arb", "engine", "--shard", "a"]) == \
        "http://127.0.0.1:9101/health"
    assert health.health_url(["arb", "recorder", "--metrics-port=9200"]) == "http://127.0.0.1:9200/health"
    assert health.health_url(["arb", "api", "--port", "8080"]) == "http://127.0.0.1:8080/health"
    assert health.health_url(["arb", "demo"]) is None
    assert health.health_url(["arb", "analytics", "--metrics-port", "x"]) is None
    monkeypatch.delenv("HEALTH_URL", raising=False)
    state = {"ok": True}
    srv = MetricsServer(Metrics("recorder"), "127.0.0.1", 0, lambda: dict(state))
    try:
        cmdline = tmp_path / "cmdline"
        cmdline.write_bytes(b"\0".join([b"/opt/venv/bin/arb", b"recorder", b"--metrics-port", str(srv.port).encode()]))
        assert health.main(cmdline) == 0
        state["ok"] = False  # the role says it is not healthy: 503
        assert health.main(cmdline) == 1
        cmdline.write_bytes(b"arb\0demo")
        assert health.main(cmdline) == 1
    finally:
        srv.close()
    assert health.main(cmdline) == 1  # nobody listening


def test_deploy_doc_names_what_is_checked() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text()
    for word in ("kubeseal", "helm-python-sdk", "kubernetes-validate", "compose-spec", "Not checked"):
        assert word in doc, word
    assert all(v in doc for v in ("JWT_SECRET", "SENTRY_DSN", "VITE_SENTRY_DSN", "PGPASSWORD"))
    tomllib.loads((ROOT / "infra/compose/arb.toml").read_text())
