"""Type-checks dashboard JSON against Grafana's own schema (npm @grafana/schema) with the TypeScript compiler.

@grafana/schema ships Grafana's dashboard and panel definitions as TypeScript types, not JSON Schema, so
each panel becomes a typed constant, its options another (checked against the panel type's own
definitions, which the dashboard type leaves open), and the dashboard one more. tsc rejects unknown
properties and wrong types in object literals, which is what Grafana's schema would reject.
tests/grafana-schema/package.json pins both packages; ``npm ci --prefix tests/grafana-schema`` (in .ci/test)
installs them.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent / "grafana-schema"
TSC = PROJECT / "node_modules" / "typescript" / "bin" / "tsc"
# panel type -> the module of @grafana/schema that defines its options and field config
PANEL_TYPES = {
    "stat": "StatPanelCfg", "table": "TablePanelCfg", "timeseries": "TimeSeriesPanelCfg",
    "bargauge": "BarGaugePanelCfg", "state-timeline": "StateTimelinePanelCfg",
}
WITH_FIELD_CONFIG = {"table", "timeseries", "state-timeline"}  # the others declare no custom field config
# JSON carries an enum's value ("value", "absolute"); TypeScript's string enums accept only their members.
# Loose<T> is T with each string enum widened to the union of its values, everything else kept, so tsc still
# rejects unknown keys, wrong types and values outside the enum.
LOOSE = ("type Loose<T> = T extends string ? `${T}` : T extends (infer U)[] ? Loose<U>[] : "
         "T extends object ? { [K in keyof T]: Loose<T[K]> } : T;")
TSCONFIG = {"compilerOptions": {"strict": True, "noEmit": True, "module": "esnext", "moduleResolution": "bundler",
                                "target": "es2022", "skipLibCheck": True, "types": []}, "files": ["check.ts"]}


def _module(kind: str) -> str:
    folder = kind.replace("-", "")
    return f"@grafana/schema/dist/esm/raw/composable/{folder}/panelcfg/x/{PANEL_TYPES[kind]}_types.gen"


def typescript(boards: dict[str, dict[str, Any]]) -> str:
    """One TypeScript source that declares every dashboard and panel with Grafana's types."""
    lines = ['import type { Dashboard, Panel, RowPanel } from "@grafana/schema";', LOOSE]
    for kind, alias in PANEL_TYPES.items():
        field = f", FieldConfig as {alias}Field" if kind in WITH_FIELD_CONFIG else ""
        lines.append(f'import type {{ Options as {alias}Options{field} }} from "{_module(kind)}";')
        if kind not in WITH_FIELD_CONFIG:
            lines.append(f"type {alias}Field = Record<string, never>;")
    for index, (uid, board) in enumerate(boards.items()):
        names = []
        for panel in board["panels"]:
            name = f"b{index}_p{panel['id']}"
            names.append(name)
            if panel["type"] == "row":
                lines.append(f"const {name}: Loose<RowPanel> = {json.dumps(panel)};")
            else:
                alias = PANEL_TYPES.get(panel["type"])
                if alias is None:
                    raise ValueError(f"{uid}: panel type {panel['type']} has no schema here: add it to PANEL_TYPES")
                lines.append(f"const {name}: Loose<Panel<{alias}Options, {alias}Field>> = {json.dumps(panel)};")
                # The dashboard type leaves a panel's options open; the panel type's own definition does not.
                # Partial: Grafana fills in the options a dashboard leaves out.
                if panel.get("options") is not None:
                    lines.append(f"const {name}_options: Loose<Partial<{alias}Options>> = "
                                 f"{json.dumps(panel['options'])};")
        rest = {k: v for k, v in board.items() if k != "panels"}
        listed = ", ".join(names)
        lines.append(f"export const board{index}: Loose<Dashboard> = {{...{json.dumps(rest)}, panels: [{listed}]}};")
    return "\n".join(lines) + "\n"


def check(boards: dict[str, dict[str, Any]], workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run tsc over the boards; returncode 0 when Grafana's types accept them, tsc's messages otherwise."""
    if not TSC.is_file():
        raise AssertionError(f"{TSC} is missing: run npm ci --prefix {PROJECT} (.ci/test does)")
    (workdir / "check.ts").write_text(typescript(boards))
    (workdir / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    link = workdir / "node_modules"
    if not link.exists():
        os.symlink(PROJECT / "node_modules", link)
    return subprocess.run(["node", str(TSC), "-p", str(workdir / "tsconfig.json")], capture_output=True, text=True,
                          check=False, timeout=300)
