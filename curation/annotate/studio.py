"""A Label Studio server through its REST API (projects, task import, export), with errors a
person can act on: a server that does not answer and a refused token are `StudioError`s that
name the server, never a traceback, and never print the token."""

from __future__ import annotations

from typing import Any

import httpx


class StudioError(RuntimeError):
    """The server cannot be used: down, refusing the token, or refusing a request."""


class Studio:
    def __init__(self, url: str, token: str, timeout_s: float = 60.0):
        if not token:
            raise StudioError(f"no API token for Label Studio at {url}")
        self.url = url.rstrip("/")
        # The legacy token header: `make annotate-server` starts the server with it enabled.
        self._client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Token {token}"}, timeout=timeout_s
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Studio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StudioError(f"Label Studio at {self.url} does not answer ({type(exc).__name__}): "
                              "start it with make annotate-server, or check annotate.url") from None  # fmt: skip
        if response.status_code in (401, 403):
            raise StudioError(
                f"Label Studio at {self.url} refused the API token (HTTP {response.status_code})"
            )
        if response.status_code >= 400:
            raise StudioError(f"Label Studio at {self.url}: {method} {path} failed with HTTP "
                              f"{response.status_code}: {response.text[:300]}")  # fmt: skip
        return response.json() if response.content else None

    def check(self) -> None:
        """Fails unless the server answers and takes the token."""
        self._call("GET", "/api/projects", params={"page_size": 1})

    def project(self, title: str, label_config: str, **settings: Any) -> int:
        """The id of the project titled `title`, created (with `settings`) when there is none."""
        params: dict[str, Any] | None = {"page": 1, "page_size": 100}
        while params is not None:
            page = self._call("GET", "/api/projects", params=params)
            for project in page.get("results", []):
                if project.get("title") == title:
                    return int(project["id"])
            params = {**params, "page": params["page"] + 1} if page.get("next") else None
        body = {"title": title, "label_config": label_config, **settings}
        return int(self._call("POST", "/api/projects", json=body)["id"])

    def configure(self, project: int, **settings: Any) -> None:
        """Change a project's settings (e.g. its overlap share, whenever the config changes)."""
        self._call("PATCH", f"/api/projects/{project}", json=settings)

    def serve_folder(self, project: int, path: str) -> None:
        """Let the project's tasks show files under `path` (a local-files storage; Label Studio
        serves /data/local-files/ only from folders a project has as storage)."""
        storages = self._call("GET", "/api/storages/localfiles", params={"project": project})
        if any(s.get("path") == path for s in storages or []):
            return
        body = {"project": project, "path": path, "title": "clips", "use_blob_urls": True}
        self._call("POST", "/api/storages/localfiles", json=body)

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> int:
        """Add tasks (each {"data": ..., "predictions": [...]}); how many were added."""
        if not tasks:
            return 0
        return int(self._call("POST", f"/api/projects/{project}/import", json=tasks)["task_count"])

    def export(self, project: int) -> list[dict[str, Any]]:
        """Every task of the project with its annotations (Label Studio's JSON export)."""
        params = {"exportType": "JSON", "download_all_tasks": "true"}
        return list(self._call("GET", f"/api/projects/{project}/export", params=params))
