"""What the project's plain command-line entry points share (python -m shopstream.bronze.cli / extract.cli).

Plain processes on purpose: the fault suite kills them with -9, and they never import Airflow (importing it
moves logging onto stdout, where the CLIs print their JSON result).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any


def setup_logging(level: str) -> None:
    """Logs go to stderr: stdout carries the command's JSON result."""
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def kafka_config(ap: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """The confluent-kafka config from --kafka-config (JSON) and --bootstrap; a usage error when no broker."""
    config = json.loads(args.kafka_config)
    if args.bootstrap:
        config["bootstrap.servers"] = args.bootstrap
    if not config.get("bootstrap.servers"):
        ap.error("--bootstrap (or $KAFKA_BOOTSTRAP) is required")
    return config
