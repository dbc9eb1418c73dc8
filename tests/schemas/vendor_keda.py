"""Writes the KEDA CRDs' schemas as strict JSON Schemas, for validating manifests offline.

The CRDs come from KEDA's Go module (its zip carries config/crd/bases/): fetch it with
``go mod download -json github.com/kedacore/keda/v2@VERSION`` and pass the printed "Dir":

    uv run python tests/schemas/vendor_keda.py /root/go/pkg/mod/github.com/kedacore/keda/v2@v2.21.0

Strict as ``kubectl apply --validate=strict`` is: an object that lists its properties refuses
others unless the CRD says it keeps unknown fields. A trigger's metadata is a free map in the CRD,
so the Kafka scaler's parameters (their names, where each may be given, allowed values) are read
from the ``keda:"name=..."`` tags of pkg/scalers/kafka_scaler.go in the same module.
"""

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent / "keda"
CRDS = ("keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml")


def strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def json_schema(crd: dict[str, Any], version: dict[str, Any], source: str) -> dict[str, Any]:
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    schema = strict(version["schema"]["openAPIV3Schema"])
    schema["properties"]["apiVersion"] = {"const": f"{group}/{version['name']}"}
    schema["properties"]["kind"] = {"const": kind}
    schema["properties"]["metadata"] = {"type": "object"}  # checked by Kubernetes' own schema
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    return {"$schema": "http://json-schema.org/draft-07/schema#", "$comment": source, **schema}


KEDA_TAG = re.compile(r'keda:"name=([^,"]+),order=([^,"]+)([^"]*)"')


def scaler_parameters(go_source: str) -> dict[str, dict[str, list[str]]]:
    parameters = {}
    for name, order, rest in KEDA_TAG.findall(go_source):
        enum = re.search(r"enum=([^,]+)", rest)
        parameters[name] = {
            "from": order.split(";"),
            "enum": enum.group(1).split(";") if enum else [],
        }
    return parameters


def main(module_dir: Path) -> None:
    module = f"github.com/kedacore/keda/{module_dir.name}"
    HERE.mkdir(exist_ok=True)
    for name in CRDS:
        crd = yaml.safe_load((module_dir / "config" / "crd" / "bases" / name).read_text())
        for version in crd["spec"]["versions"]:
            kind = crd["spec"]["names"]["kind"].lower()
            target = HERE / f"{kind}-{version['name']}.json"
            source = f"generated from {module}: config/crd/bases/{name}"
            target.write_text(json.dumps(json_schema(crd, version, source), indent=1) + "\n")
            print(target)
    kafka = (module_dir / "pkg" / "scalers" / "kafka_scaler.go").read_text()
    target = HERE / "kafka-scaler-parameters.json"
    document = {
        "$comment": f"generated from {module}: pkg/scalers/kafka_scaler.go",
        "parameters": scaler_parameters(kafka),
    }
    target.write_text(json.dumps(document, indent=1) + "\n")
    print(target)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
