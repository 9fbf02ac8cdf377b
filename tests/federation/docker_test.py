"""Static checks of docker/ (there is no Docker engine here) and of its helper scripts.

- docker-compose.yml parses, interpolates like Compose, and runs exactly the
  commands scripts/federate runs (`plan --docker`), for every federation file
  marked `docker: true`, for several client counts and both server profiles;
- its ports, addresses, health checks, volumes and profiles agree;
- the Dockerfile's stages copy files that exist, the runtime images copy the
  right binaries, the server image has no LibTorch, the build stage's package
  list is scripts/setup.sh's, and the sources it copies configure the targets;
- docker/runtime-packages.sh, healthcheck.sh and claim-partition.sh work.
Needs PETAL_BINARY_DIR with petal-server and petal-client built.
"""
import glob
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import unittest

import yaml

SOURCE = os.environ.get("PETAL_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("PETAL_BINARY_DIR", os.path.join(SOURCE, "build"))
DOCKER = os.path.join(SOURCE, "docker")
FEDERATE = os.path.join(SOURCE, "scripts", "federate")


def interpolate(value, env):
    """Compose's variable syntax: $$, ${VAR}, ${VAR:-default}, ${VAR-default}, $VAR."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value
    pattern = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")

    def sub(m):
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, default = m.group(3), m.group(4)
        if op == ":-":
            return env.get(name) or default
        if op == "-":
            return env.get(name, default)
        if name not in env:
            raise KeyError(f"variable {name} is not set and has no default")
        return env[name]
    return pattern.sub(sub, value)


def dotenv():
    env = {}
    with open(os.path.join(DOCKER, ".env"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                env[k] = v
    return env


def parse_dockerfile():
    """[(stage name, base, [(instruction, args)])] with continuation lines joined."""
    with open(os.path.join(DOCKER, "Dockerfile"), encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"\\\n", " ", text)
    stages = []
    args = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and not stages:
            k, _, v = rest.partition("=")
            args[k] = v
            continue
        if word == "FROM":
            m = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", rest, re.IGNORECASE)
            assert m, f"FROM without a stage name: {line}"
            base = re.sub(r"\$\{(\w+)\}", lambda x: args[x.group(1)], m.group(1))
            stages.append((m.group(2), base, []))
            continue
        stages[-1][2].append((word, rest))
    return stages


class ComposeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(DOCKER, "docker-compose.yml"), encoding="utf-8") as f:
            cls.raw = yaml.safe_load(f)
        cls.stages = {name: (base, body) for name, base, body in parse_dockerfile()}

    def compose(self, **env):
        e = dotenv()
        e.update(env)
        return interpolate(self.raw, e)

    def entrypoint(self, stage):
        for word, rest in self.stages[stage][1]:
            if word == "ENTRYPOINT":
                return json.loads(rest)
        self.fail(f"stage {stage} has no ENTRYPOINT")

    def plan(self, federation, clients, server="petal"):
        r = subprocess.run([FEDERATE, "plan", federation, "--docker", "--json", "--clients",
                            str(clients), "--server", server], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def docker_federations(self):
        out = []
        for path in sorted(glob.glob(os.path.join(SOURCE, "configs", "federation", "*.yaml"))):
            with open(path, encoding="utf-8") as f:
                if (yaml.safe_load(f) or {}).get("docker"):
                    out.append(path)
        return out

    def test_file_structure(self):
        self.assertEqual(set(self.raw) - {"name", "services", "volumes", "networks"},
                         {k for k in self.raw if k.startswith("x-")})
        services = self.raw["services"]
        self.assertEqual(set(services), {"server", "flower-server", "partitions", "client"})
        self.assertEqual(services["server"]["profiles"], ["petal"])
        self.assertEqual(services["flower-server"]["profiles"], ["flower"])
        self.assertNotIn("profiles", services["client"])
        self.assertNotIn("profiles", services["partitions"])
        self.assertEqual(dotenv()["COMPOSE_PROFILES"], "petal")
        for name, svc in services.items():
            build = svc["build"]
            self.assertEqual(os.path.normpath(os.path.join(DOCKER, build["context"])), SOURCE, name)
            self.assertEqual(build["dockerfile"], "docker/Dockerfile", name)
            self.assertIn(build["target"], self.stages, name)
            self.assertEqual(svc["image"].split("/")[-1].split(":")[0], build["target"], name)
        for name in ("server", "flower-server", "client"):
            self.assertIn("healthcheck", services[name], name)
            self.assertTrue(services[name]["restart"].startswith("on-failure"), name)
        self.assertEqual(services["client"]["depends_on"]["partitions"]["condition"],
                         "service_completed_successfully")
        self.assertEqual(services["partitions"]["command"], ["--reset"])

    def test_volumes_exist(self):
        declared = set(self.raw.get("volumes") or {})
        c = self.compose()
        for name, svc in c["services"].items():
            for spec in svc.get("volumes", []):
                source, target = spec.split(":")[:2]
                if source.startswith((".", "/")):
                    self.assertTrue(os.path.isdir(os.path.join(DOCKER, source)), f"{name}: {source}")
                else:
                    self.assertIn(source, declared, f"{name}: volume {source} is not declared")
                self.assertTrue(target.startswith("/"), target)
        for name in ("server", "flower-server", "client"):
            mounts = {v.split(":")[1]: v.split(":")[0] for v in c["services"][name]["volumes"]}
            self.assertEqual(os.path.normpath(os.path.join(DOCKER, mounts["/petal/configs"])),
                             os.path.join(SOURCE, "configs"))
            self.assertEqual(mounts["/petal/out"], "out")
        self.assertEqual(c["services"]["client"]["environment"]["PETAL_SLOTS_DIR"], "/petal/slots")
        self.assertIn("slots:/petal/slots", c["services"]["client"]["volumes"])
        self.assertIn("slots:/petal/slots", c["services"]["partitions"]["volumes"])

    def test_commands_are_the_launchers(self):
        feds = self.docker_federations()
        self.assertIn(os.path.join(SOURCE, "configs", "federation", "demo.yaml"), feds)
        for fed in feds:
            name = os.path.splitext(os.path.basename(fed))[0]
            for n in (2, 4, 7):
                env = {"PETAL_FEDERATION": name, "PETAL_NUM_CLIENTS": str(n)}
                c = self.compose(**env)["services"]
                for service, kind, stage in (("server", "petal", "server"),
                                             ("flower-server", "flower", "flower-server")):
                    plan = interpolate(self.plan(fed, n, kind), dict(env, PETAL_PARTITION_ID="0"))
                    self.assertEqual(self.entrypoint(stage) + c[service]["command"], plan["server"],
                                     f"{service} ({name}, {n} clients) drifted from "
                                     f"`scripts/federate plan {fed} --docker --server {kind}`")
                plan = interpolate(self.plan(fed, n), dict(env, PETAL_PARTITION_ID="{id}"))
                client = plan["client"][0]
                self.assertEqual(len(plan["client"]), 1)  # one template; replicas differ by id
                self.assertEqual(client[-2:], ["--set", "client.partition_id={id}"])
                self.assertEqual(self.entrypoint("client"), ["petal-claim-partition"])
                self.assertEqual(c["client"]["command"], client[:-2],
                                 f"client ({name}, {n}) drifted from the launcher's plan")
                self.assertEqual(int(c["client"]["deploy"]["replicas"]), n)
                self.assertEqual(c["client"]["environment"]["PETAL_NUM_CLIENTS"], str(n))
                # Every config file a container reads exists in the mounted configs/.
                for argv in (plan["server"], client):
                    path = argv[argv.index("--config") + 1]
                    self.assertTrue(path.startswith("/petal/configs/"), path)
                    local = os.path.join(SOURCE, "configs", path[len("/petal/configs/"):])
                    self.assertTrue(os.path.isfile(local), f"{name}: {path} -> {local} missing")
                # Compose's runs are cross-silo: the min_* = N rule holds only for fraction 1.
                with open(fed, encoding="utf-8") as f:
                    doc = yaml.safe_load(f)
                server_cfg = os.path.join(os.path.dirname(fed), doc["server"]["config"])
                with open(server_cfg, encoding="utf-8") as f:
                    strat = (yaml.safe_load(f) or {}).get("strategy", {}) or {}
                self.assertEqual(float(strat.get("fraction_fit", 1.0)), 1.0, fed)
                self.assertEqual(float(strat.get("fraction_evaluate", 1.0)), 1.0, fed)
                self.assertFalse(doc["server"].get("set") or doc["client"].get("set"),
                                 f"{fed}: Compose cannot pass the file's `set` overrides")

    def test_default_topology_is_the_demo(self):
        with open(os.path.join(SOURCE, "configs", "federation", "demo.yaml"), encoding="utf-8") as f:
            demo = yaml.safe_load(f)
        self.assertEqual(dotenv()["PETAL_NUM_CLIENTS"], str(demo["clients"]))
        self.assertEqual(dotenv()["PETAL_FEDERATION"], "demo")
        # Without .env, the inline defaults give the same.
        c = interpolate(self.raw, {})["services"]
        self.assertEqual(int(c["client"]["deploy"]["replicas"]), demo["clients"])
        self.assertIn("/petal/configs/federation/demo/server.yaml", c["server"]["command"])

    def test_ports_addresses_and_healthchecks_agree(self):
        c = self.compose()["services"]

        def setting(argv, key):
            values = [a.split("=", 1)[1] for a in argv if a.startswith(key + "=")]
            self.assertEqual(len(values), 1, key)
            return values[0]

        for name in ("server", "flower-server"):
            svc = c[name]
            port = setting(svc["command"], "server.address").rsplit(":", 1)[1]
            self.assertEqual(setting(svc["command"], "server.address").rsplit(":", 1)[0], "0.0.0.0")
            self.assertEqual(svc["healthcheck"]["test"], ["CMD", "petal-healthcheck", "listen", port])
            self.assertEqual(svc["expose"], [port])
            self.assertEqual(svc["ports"][0].split(":")[-1], port)
            self.assertIn("fl-server", svc["networks"]["default"]["aliases"])
            # The image's own HEALTHCHECK says the same.
            stage = "server" if name == "server" else "flower-server"
            checks = [r for w, r in self.stages[stage][1] if w == "HEALTHCHECK"]
            self.assertEqual(len(checks), 1)
            self.assertTrue(checks[0].endswith(json.dumps(["petal-healthcheck", "listen", port])),
                            checks[0])
            self.assertIn(("EXPOSE", port), self.stages[stage][1])
        host, port = setting(c["client"]["command"], "server.address").rsplit(":", 1)
        self.assertEqual(host, "fl-server")
        self.assertEqual(port, setting(c["server"]["command"], "server.address").rsplit(":", 1)[1])
        self.assertEqual(c["client"]["healthcheck"]["test"],
                         ["CMD", "petal-healthcheck", "connected", port])
        checks = [r for w, r in self.stages["client"][1] if w == "HEALTHCHECK"]
        self.assertTrue(checks[0].endswith(json.dumps(["petal-healthcheck", "connected", port])))

    def test_unset_variables_without_default_are_caught(self):
        with self.assertRaises(KeyError):
            interpolate("${NOPE}", {})
        self.assertEqual(interpolate("a${X:-b}c$$d", {}), "abc$d")
        self.assertEqual(interpolate("${X:-b}", {"X": ""}), "b")
        self.assertEqual(interpolate("${X-b}", {"X": ""}), "")


class DockerfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stages = parse_dockerfile()
        cls.by_name = {name: (base, body) for name, base, body in cls.stages}

    def test_stages_and_bases(self):
        self.assertEqual([s[0] for s in self.stages], ["build", "server", "client", "flower-server"])
        self.assertEqual(self.by_name["build"][0], "debian:bookworm")
        for name in ("server", "client", "flower-server"):
            self.assertEqual(self.by_name[name][0], "debian:bookworm-slim", name)
            users = [r for w, r in self.by_name[name][1] if w == "USER"]
            self.assertEqual(users, ["petal"], f"{name} must not run as root")

    def test_copied_files_exist_and_come_from_earlier_stages(self):
        seen = []
        for name, _, body in self.stages:
            for word, rest in body:
                if word != "COPY":
                    continue
                parts = shlex.split(rest)
                if parts[0].startswith("--from="):
                    source_stage = parts[0].split("=", 1)[1]
                    self.assertIn(source_stage, seen, f"{name}: COPY --from={source_stage}")
                    continue
                for src in parts[:-1]:
                    self.assertTrue(os.path.exists(os.path.join(SOURCE, src)), f"{name}: COPY {src}")
            seen.append(name)

    def test_runtime_images_copy_the_right_binaries(self):
        def copied(stage):
            out = []
            for word, rest in self.by_name[stage][1]:
                parts = shlex.split(rest)
                if word == "COPY" and parts[0] == "--from=build":
                    out += [os.path.basename(p) for p in parts[1:-1]]
            return out

        self.assertEqual(copied("server"), ["server.packages", "petal-server"])
        self.assertEqual(copied("client"),
                         ["client.packages", "petal-client", "petal-train", "petal-sim"])
        build_text = " ".join(r for _, r in self.by_name["build"][1])
        for target in ("petal-server", "petal-client", "petal-train", "petal-sim"):
            self.assertRegex(build_text, rf"--target [^&]*\b{target}\b")
        # The server image never sees LibTorch: not in its instructions, and the
        # build fails if its runtime package list names torch.
        server_text = " ".join(r for _, r in self.by_name["server"][1])
        self.assertNotIn("torch", server_text.lower())
        self.assertIn("grep -i torch /out/server.packages", build_text)
        entry = {name: json.loads([r for w, r in body if w == "ENTRYPOINT"][0])
                 for name, (_, body) in self.by_name.items() if name != "build"}
        self.assertEqual(entry["server"], ["petal-server"])
        self.assertEqual(entry["client"], ["petal-claim-partition"])
        self.assertEqual(entry["flower-server"], ["python3", "/petal/scripts/federate_flower.py"])

    def test_build_packages_are_setup_shs(self):
        with open(os.path.join(SOURCE, "scripts", "setup.sh"), encoding="utf-8") as f:
            setup = f.read()
        setup_pkgs = set(re.search(r"PACKAGES=\((.*?)\)", setup, re.S).group(1).split())
        install = " ".join(r for w, r in self.by_name["build"][1] if w == "RUN")
        pkgs = set(re.search(r"--no-install-recommends (.*?) &&", install).group(1).split())
        self.assertLessEqual(pkgs - {"ca-certificates"}, setup_pkgs,
                             "the build stage installs packages scripts/setup.sh does not")
        for must in ("libgrpc++-dev", "libtorch-dev", "libyaml-cpp-dev", "libabsl-dev"):
            self.assertIn(must, pkgs)

    def test_flower_image_uses_the_pinned_requirements(self):
        text = " ".join(r for _, r in self.by_name["flower-server"][1])
        self.assertIn("scripts/requirements-interop.txt", text)
        self.assertIn("pip install", text)

    def test_build_stage_sources_configure_the_targets(self):
        """The files the build stage copies are enough to configure petal-server & co."""
        copied = []
        for word, rest in self.by_name["build"][1]:
            if word == "COPY" and not rest.startswith("--from"):
                parts = shlex.split(rest)
                if parts[-1] in ("./", ".") or parts[-1].endswith("/") and not parts[0].startswith("docker/"):
                    copied += parts[:-1]
        self.assertEqual(sorted(copied), ["CMakeLists.txt", "cmake/", "proto/", "src/"])
        run = [r for w, r in self.by_name["build"][1] if w == "RUN" and "cmake -S" in r][0]
        flags = re.findall(r"-D\S+", run)
        tmp = tempfile.mkdtemp(prefix="petal_docker_ctx_")
        try:
            src = os.path.join(tmp, "src")
            os.makedirs(src)
            for item in copied:
                item = item.rstrip("/")
                if os.path.isdir(os.path.join(SOURCE, item)):
                    shutil.copytree(os.path.join(SOURCE, item), os.path.join(src, item))
                else:
                    shutil.copy(os.path.join(SOURCE, item), os.path.join(src, item))
            build = os.path.join(tmp, "build")
            r = subprocess.run(["cmake", "-S", src, "-B", build, "-G", "Ninja", *flags],
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
            t = subprocess.run(["ninja", "-C", build, "-t", "targets", "all"], capture_output=True,
                               text=True, timeout=60)
            names = {line.split(":")[0] for line in t.stdout.splitlines()}
            for target in ("petal-server", "petal-client", "petal-train", "petal-sim"):
                self.assertIn(target, names)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class ScriptsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="petal_docker_scripts_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def packages(self, *binaries):
        return subprocess.run([os.path.join(DOCKER, "runtime-packages.sh"), *binaries],
                              capture_output=True, text=True, timeout=120)

    def test_runtime_packages_of_the_real_binaries(self):
        server = self.packages(os.path.join(BINARY, "src", "server", "petal-server"))
        self.assertEqual(server.returncode, 0, server.stderr)
        pkgs = server.stdout.split()
        self.assertIn("libc6", pkgs)
        self.assertTrue(any(p.startswith("libgrpc++") for p in pkgs), pkgs)
        self.assertTrue(any(p.startswith("libprotobuf") for p in pkgs), pkgs)
        self.assertFalse([p for p in pkgs if "torch" in p], "petal-server links LibTorch")
        client = self.packages(os.path.join(BINARY, "src", "client", "petal-client"))
        self.assertEqual(client.returncode, 0, client.stderr)
        self.assertTrue(any(p.startswith("libtorch") for p in client.stdout.split()))
        self.assertEqual(client.stdout.split(), sorted(set(client.stdout.split())))

    def test_runtime_packages_refuses_libraries_from_nowhere(self):
        with open(os.path.join(self.tmp, "x.c"), "w", encoding="utf-8") as f:
            f.write("int petal_x(void) { return 1; }\n")
        with open(os.path.join(self.tmp, "main.c"), "w", encoding="utf-8") as f:
            f.write("int petal_x(void);\nint main(void) { return petal_x() - 1; }\n")
        subprocess.run(["cc", "-shared", "-fPIC", "-o", "libpetalx.so", "x.c"], cwd=self.tmp, check=True)
        subprocess.run(["cc", "-o", "main", "main.c", "-L.", "-lpetalx", f"-Wl,-rpath,{self.tmp}"],
                       cwd=self.tmp, check=True)
        r = self.packages(os.path.join(self.tmp, "main"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("no Debian package provides", r.stderr)
        os.remove(os.path.join(self.tmp, "libpetalx.so"))
        r = self.packages(os.path.join(self.tmp, "main"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("libpetalx.so, which is not installed", r.stderr)
        r = self.packages(os.path.join(self.tmp, "x.c"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("not an executable", r.stderr)

    def health(self, *args):
        return subprocess.run([os.path.join(DOCKER, "healthcheck.sh"), *args], capture_output=True,
                              text=True, timeout=30).returncode

    def test_healthcheck_sees_listening_and_connected_sockets(self):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        self.assertEqual(self.health("listen", str(port)), 1)  # bound, not listening yet
        listener.listen()
        self.assertEqual(self.health("listen", str(port)), 0)
        self.assertEqual(self.health("connected", str(port)), 1)
        conn = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        self.assertEqual(self.health("connected", str(port)), 0)
        conn.close()
        accepted.close()
        listener.close()
        self.assertEqual(self.health("listen", str(port)), 1)
        for bad in (["listen"], ["listen", "x"], ["listen", "70000"], ["dance", "80"], []):
            self.assertEqual(self.health(*bad), 2, bad)

    def claim(self, *args, env=None, id_file=None):
        e = {"PATH": os.environ["PATH"], "PETAL_SLOTS_DIR": os.path.join(self.tmp, "slots"),
             "PETAL_NUM_CLIENTS": "4",
             "PETAL_ID_FILE": id_file or os.path.join(self.tmp, f"id-{threading.get_ident()}-{len(args)}")}
        e.update(env or {})
        return subprocess.run([os.path.join(DOCKER, "claim-partition.sh"), *args], capture_output=True,
                              text=True, timeout=30, env=e)

    def test_replicas_claim_distinct_partitions(self):
        self.assertEqual(self.claim("--reset").returncode, 0)
        results = [None] * 6

        def one(i):
            results[i] = self.claim("echo", "petal-client", "--config", "c.yaml",
                                    id_file=os.path.join(self.tmp, f"id{i}"))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok = [r for r in results if r.returncode == 0]
        failed = [r for r in results if r.returncode != 0]
        self.assertEqual(len(ok), 4)
        self.assertEqual(len(failed), 2)
        for r in failed:
            self.assertIn("all 4 partition slots", r.stderr)
        ids = []
        for r in ok:
            m = re.fullmatch(r"petal-client --config c.yaml --set client.partition_id=(\d+)\n", r.stdout)
            self.assertIsNotNone(m, r.stdout)  # the command, then exactly this flag
            ids.append(int(m.group(1)))
        self.assertEqual(sorted(ids), [0, 1, 2, 3])
        # A restarted container keeps its id (its id file survives in the container).
        winner = [i for i, r in enumerate(results) if r.returncode == 0][0]
        again = self.claim("echo", id_file=os.path.join(self.tmp, f"id{winner}"))
        self.assertEqual(again.returncode, 0)
        self.assertEqual(again.stdout, results[winner].stdout.replace(
            "petal-client --config c.yaml ", ""))
        # --reset frees every slot.
        self.assertEqual(self.claim("--reset").returncode, 0)
        fresh = self.claim("echo", id_file=os.path.join(self.tmp, "fresh"))
        self.assertEqual(fresh.stdout, "--set client.partition_id=0\n")

    def test_claim_checks_its_environment(self):
        r = self.claim("echo", env={"PETAL_PARTITION_ID": "2"})
        self.assertEqual(r.stdout, "--set client.partition_id=2\n")
        self.assertEqual(self.claim("echo", env={"PETAL_PARTITION_ID": "9"}).returncode, 2)
        self.assertEqual(self.claim("echo", env={"PETAL_NUM_CLIENTS": "zero"}).returncode, 2)
        self.assertEqual(self.claim("echo", env={"PETAL_NUM_CLIENTS": "0"}).returncode, 2)
        self.assertEqual(self.claim().returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
