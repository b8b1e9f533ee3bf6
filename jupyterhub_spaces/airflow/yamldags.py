"""The YAML DAGs of every space, built with dag-factory from what the service hands.

The spaces service reads each space's ``dags/`` folders (link-safe, bounded) and hands
the DAGs that passed its schema (``GET engine/dags``); this module checks each one
again with the same schema (:mod:`.spec`), turns it into a dag-factory configuration
naming only our operator classes, and lets dag-factory build it. dag-factory is never
given a file of a space (its own loader expands environment variables and reads
Python tags), and each DAG is built on its own: one that fails is logged and skipped,
never breaking another's.
"""

from __future__ import annotations

import logging

from . import client, spec

log = logging.getLogger(__name__)


def definitions() -> list[dict]:
    return client.call("GET", "engine/dags")["dags"]


def build(defn: dict) -> dict:
    """The Airflow DAG (by DAG id) of one YAML DAG definition."""
    from dagfactory import load_yaml_dags

    spec.check({defn["name"]: defn["spec"]}, int(defn["space_id"]))
    built: dict = {}
    # a configuration of ours (config_dict): dag-factory reads no file and no folder
    load_yaml_dags(globals_dict=built, config_dict={defn["dag_id"]: spec.dagfactory_config(defn)},
                   defaults_config_dict={"default_args": {"owner": defn["owner"]}})
    return built


def yaml_dags() -> dict:
    dags = {}
    for defn in definitions():
        try:
            dags.update(build(defn))
        except Exception:
            log.exception("cannot build YAML DAG %s of space %s", defn.get("dag_id"), defn.get("space_id"))
    return dags
