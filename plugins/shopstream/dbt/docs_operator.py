"""The task of the DAG `shopstream_dbt_docs`: Cosmos' `dbt docs generate` into the folder Cosmos' plugin serves.

What is generated when, where it goes and how it is published is shopstream.dbt.docs (no Cosmos there, so
`make demo`'s docs step does not import it); this module adds Cosmos' operator around it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cosmos.operators.local import DbtDocsLocalOperator

from shopstream.dbt.docs import configured_docs_dir, publish, read_stamp, to_generate


class DbtDocsToFolderOperator(DbtDocsLocalOperator):
    """Cosmos' `dbt docs generate` task, writing into the folder Cosmos' plugin serves (`configured_docs_dir`).

    Returns (XCom) what the docs cover - models, sources, tests, catalogued tables, models without columns - and
    where they are, or why nothing needed generating; `force=True` (the DAG's `force` param) regenerates anyway.
    """

    def __init__(self, *args: Any, docs_dir: str | None = None, force: bool | str = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.docs_dir = docs_dir
        self.force = force

    template_fields = (*DbtDocsLocalOperator.template_fields, "force")

    def execute(self, context: Any, **kwargs: Any) -> dict[str, Any]:
        docs_dir = Path(self.docs_dir) if self.docs_dir else configured_docs_dir()
        needed, why, fingerprint = to_generate(docs_dir, self.force)
        if not needed:
            self.log.info("%s; nothing to generate (the DAG's `force` param regenerates them)", why)
            return {"generated": False, "why": why, **(read_stamp(docs_dir) or {})}
        self.log.info("generating the dbt docs: %s", why)
        stamps: list[dict[str, Any]] = []

        def publish_docs(project_dir: str, **_: Any) -> None:
            # Bound here, not in __init__: the task that runs is a copy of the operator the DAG file built.
            stamps.append(publish(Path(project_dir) / "target", docs_dir, fingerprint))

        self.callback = publish_docs
        self.callback_args = {}
        super().execute(context, **kwargs)
        if not stamps:
            raise RuntimeError(f"dbt docs generate ended without docs to publish into {docs_dir}")
        stamp = stamps[-1]
        if stamp["models_without_columns"]:
            self.log.warning("the catalog has no columns for %s (their tables do not exist yet); the next run "
                             "regenerates the docs", ", ".join(stamp["models_without_columns"]))
        self.log.info("dbt docs: %d models, %d sources, %d tests, %d catalogued tables -> %s",
                      stamp["models"], stamp["sources"], stamp["tests"],
                      stamp["catalog_tables"], docs_dir)
        return {"generated": True, "why": why, **stamp}
