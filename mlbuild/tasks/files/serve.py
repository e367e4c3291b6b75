"""The serving images' entry point: batch predictions, an HTTP service and a health check.

    serve.py predict [--model NAME] INPUT OUTPUT
                                     CSV (or Parquet, when pyarrow is installed) in;
                                     CSV out: `prediction`, and `proba_<class>` per row
                                     for a classifier with probabilities
    serve.py serve [--port 8080]     HTTP: POST /models/<name>/predict, POST /predict (an
                                     image of one model), GET /models, GET /health
    serve.py health                  every model file matches its sha256 and answers
    serve.py probe REQUESTS OUT      start the HTTP service on loopback, post each
                                     REQUESTS/<name>.json to /models/<name>/predict and
                                     write the answers to OUT/<name>.json: what the
                                     acceptance test runs, in a container with no network

A request body is JSON: {"columns": [...], "rows": [[...], ...]} or {"rows": [{...}, ...]}.
The answer: {"model", "sha256", "predictions"} and, for a classifier with probabilities,
"probabilities".

An image of one model (BuildImage) holds it in MLBUILD_MODEL with the project's inference
module beside this file; the service image (BuildServiceImage) holds every model in a
folder of its own under MLBUILD_MODELS: the model file, its inference module and
model.json. Each runs the project's own inference code, so what the accuracy gates
measured is what the image computes.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
import threading
from pathlib import Path

MODEL = os.environ.get("MLBUILD_MODEL", "/model/model")
MODELS = os.environ.get("MLBUILD_MODELS", "")


class Served:
    """One model: its file, expected sha256 and inference module, loaded on first use."""

    def __init__(self, name: str, path: str, sha256: str, module):
        self.name, self.path, self.sha256, self.module = name, path, sha256, module
        self._model, self._lock = None, threading.Lock()

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                self._model = self.module.load_model(self.path)
            return self._model

    def features(self) -> list[str] | None:
        return list(self.module.features(self.model)) if hasattr(self.module, "features") else None

    def predict(self, frame) -> dict:
        """Predictions (and probabilities) of ``frame``; KeyError names missing columns."""
        missing = sorted(set(self.features() or ()) - set(frame.columns))
        if missing:
            raise KeyError(f"the rows lack the model's feature columns {missing[:10]}")
        if hasattr(self.module, "predict_proba"):
            proba = self.module.predict_proba(self.model, frame)
            return {"predictions": proba.argmax(axis=1).tolist(), "probabilities": proba.tolist()}
        return {"predictions": self.module.predict(self.model, frame).tolist()}

    def check(self) -> str:
        with open(self.path, "rb") as f:
            actual = hashlib.sha256(f.read()).hexdigest()
        if self.sha256 and actual != self.sha256:
            raise ValueError(f"{self.path} has sha256 {actual}, expected {self.sha256}")
        features = self.features()
        if features is not None:  # one row of zeros must go through
            import pandas as pd

            self.predict(pd.DataFrame([[0.0] * len(features)], columns=features))
        return f"model {self.name} sha256 {actual}" + (
            f", {len(features)} features" if features is not None else "")


def served() -> dict[str, Served]:
    """The models this image holds, by name."""
    if not MODELS:
        name = os.environ.get("MLBUILD_MODEL_NAME", "model")
        return {name: Served(name, MODEL, os.environ.get("MLBUILD_MODEL_SHA256", ""),
                             importlib.import_module("inference"))}
    found = {}
    for meta in sorted(Path(MODELS).glob("*/model.json")):
        info = json.loads(meta.read_text())
        spec = importlib.util.spec_from_file_location(f"inference_{meta.parent.name}",
                                                      meta.parent / info["inference"])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found[info["name"]] = Served(info["name"], str(meta.parent / info["file"]),
                                     info["sha256"], module)
    return found


def _read(path: str):
    import pandas as pd

    return pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)


def frame_of(body: dict):
    """The rows of a request body as a table (the acceptance test builds its own the same way)."""
    import pandas as pd

    if body.get("columns") is not None:
        return pd.DataFrame(body["rows"], columns=body["columns"])
    return pd.DataFrame.from_records(body["rows"])


def predict(source: str, dest: str, name: str | None = None) -> int:
    import pandas as pd

    models = served()
    if name is None and len(models) == 1:
        name = next(iter(models))
    if name not in models:
        print(f"error: name a model with --model: {', '.join(models)}", file=sys.stderr)
        return 2
    try:
        answer = models[name].predict(_read(source))
    except KeyError as exc:
        print(f"error: {source}: {exc.args[0]}", file=sys.stderr)
        return 2
    out = pd.DataFrame({"prediction": answer["predictions"]})
    if "probabilities" in answer:
        proba = pd.DataFrame(answer["probabilities"])
        out = pd.concat([out, proba.add_prefix("proba_")], axis=1)
    out.to_csv(dest, index=False)
    print(f"predicted {len(out)} rows into {dest}")
    return 0


def health() -> int:
    models = served()
    if not models:
        print(f"unhealthy: no model in {MODELS}", file=sys.stderr)
        return 1
    for model in models.values():
        try:
            print(f"ok: {model.check()}")
        except Exception as exc:  # noqa: BLE001 - a health check reports whatever broke
            print(f"unhealthy: model {model.name}: {exc}", file=sys.stderr)
            return 1
    return 0


def server(models: dict[str, Served], host: str, port: int):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path in ("/health", "/models"):
                return self._answer(200, {"status": "ok", "models": {
                    n: m.sha256 for n, m in models.items()}})
            return self._answer(404, {"error": f"no such path {self.path}"})

        def do_POST(self):
            parts = self.path.strip("/").split("/")
            if parts == ["predict"] and len(models) == 1:
                name = next(iter(models))
            elif len(parts) == 3 and parts[0] == "models" and parts[2] == "predict":
                name = parts[1]
            else:
                return self._answer(404, {"error": f"no such path {self.path}; POST "
                                           "/models/<name>/predict", "models": sorted(models)})
            if name not in models:
                return self._answer(404, {"error": f"no model named {name!r}",
                                          "models": sorted(models)})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                answer = models[name].predict(frame_of(body))
            except (ValueError, TypeError, KeyError) as exc:
                return self._answer(422, {"error": str(exc.args[0] if exc.args else exc)})
            return self._answer(200, {"model": name, "sha256": models[name].sha256, **answer})

        def log_message(self, format, *args):
            print(f"{self.address_string()} {format % args}", file=sys.stderr)

    return ThreadingHTTPServer((host, port), Handler)


def serve(host: str, port: int) -> int:
    models = served()
    print(f"serving {', '.join(models)} on {host}:{port}", flush=True)
    server(models, host, port).serve_forever()
    return 0


def probe(requests: str, out: str) -> int:
    import urllib.error
    import urllib.request

    if health() != 0:
        return 1
    httpd = server(served(), "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    for path in sorted(Path(requests).glob("*.json")):
        request = urllib.request.Request(f"{base}/models/{path.stem}/predict",
                                         data=path.read_bytes(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                status, body = response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            status, body = exc.code, json.loads(exc.read() or b"{}")
        Path(out, path.name).write_text(json.dumps({"status": status, "body": body}))
        print(f"POST /models/{path.stem}/predict: {status}")
    httpd.shutdown()
    return 0


def _option(argv: list[str], name: str, default: str | None = None) -> tuple[str | None, list[str]]:
    if name in argv[:-1]:
        at = argv.index(name)
        return argv[at + 1], argv[:at] + argv[at + 2:]
    return default, argv


def main(argv: list[str]) -> int:
    command, args = argv[:1], argv[1:]
    if command == ["predict"]:
        name, args = _option(args, "--model")
        if len(args) == 2:
            return predict(args[0], args[1], name)
    if command == ["serve"]:
        port, args = _option(args, "--port", "8080")
        host, args = _option(args, "--host", "0.0.0.0")
        if not args:
            return serve(host, int(port))
    if command == ["health"]:
        return health()
    if command == ["probe"] and len(args) == 2:
        return probe(args[0], args[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
