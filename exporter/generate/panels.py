"""Shared pieces of both dashboards, built with Grafana's Foundation SDK: queries, panel kinds, value
mappings, and a board that hands out panel ids and remembers which panel shows what."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from .common import FLEET_UID, HOST_UID

DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
# secure_endpoint_fault_state as one number per fault, so a stat or a state timeline can colour it.
STATE_CODES = (("clear", 0, "green"), ("not applicable", 1, "text"), ("unknown", 2, "orange"),
               ("ACTIVE", 3, "red"))
Query = cogbuilder.Builder[cogvariants.Dataquery]
Panel = Any  # the SDK's panel builders share no base class that carries their options


def query(expr: str, legend: str = "", *, instant: bool = False, as_table: bool = False, ref: str = "A") -> Query:
    """One Prometheus query; a table's is instant and table-formatted, so all its series are one frame."""
    built = prometheus.Dataquery().ref_id(ref).expr(expr).legend_format(legend).datasource(DATASOURCE)
    if as_table:
        return built.instant().format(PromQueryFormat.TABLE)
    return built.instant() if instant else built.range()


def state_code(matchers: str, by: str) -> str:
    """The current state of each fault as 0 clear, 1 not applicable, 2 unknown, 3 active: only the current
    state's series is 1, so the largest product is the code."""
    parts = " or ".join(f'(secure_endpoint_fault_state{{{matchers}, state="{state}"}} * {code})'
                        for state, code in (("active", 3), ("unknown", 2), ("not_applicable", 1), ("clear", 0)))
    return f"max by ({by}) ({parts})"


def value_map(texts: dict[str, tuple[str, str]]) -> list[models.ValueMapping]:
    """Values shown as words in a colour: {"1": ("yes", "green")}."""
    return [models.ValueMap(options={value: models.ValueMappingResult(text=text, color=color, index=i)
                                     for i, (value, (text, color)) in enumerate(texts.items())})]


STATE_MAPPING = value_map({str(code): (text, color) for text, code, color in STATE_CODES})
YES_NO = value_map({"0": ("no", "red"), "1": ("yes", "green")})


def thresholds(*steps: tuple[float | None, str]) -> builders.ThresholdsConfig:
    return builders.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps(
        [models.Threshold(value=value, color=color) for value, color in steps])


def transformation(kind: str, options: dict[str, Any]) -> models.DataTransformerConfig:
    return models.DataTransformerConfig(id_val=kind, options=options)


def organize(hide: list[str], rename: dict[str, str]) -> models.DataTransformerConfig:
    """Hide the columns a reader does not need and give the rest plain names."""
    return transformation("organize", {"excludeByName": dict.fromkeys(hide, True), "renameByName": rename})


def stat_panel(title: str, description: str, expr: str, *, unit: str = "none",
               mappings: list[models.ValueMapping] | None = None, no_value: str = "",
               steps: tuple[tuple[float | None, str], ...] = ((None, "green"), (1, "red"))) -> Panel:
    panel = (stat.Panel().title(title).description(description).datasource(DATASOURCE)
             .with_target(query(expr, instant=True)).unit(unit).thresholds(thresholds(*steps))
             .color_mode(common.BigValueColorMode.BACKGROUND).graph_mode(common.BigValueGraphMode.NONE)
             .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    if mappings:
        panel = panel.mappings(mappings)
    return panel.no_value(no_value) if no_value else panel


def table_panel(title: str, description: str, queries: list[Query], hide: list[str],
                rename: dict[str, str], no_value: str = "none",
                reshape: tuple[models.DataTransformerConfig, ...] = ()) -> Panel:
    """A table of instant, table-formatted queries (one frame each, not one per series); several queries
    are merged into one table, ``reshape`` runs before columns are hidden and renamed."""
    panel = (table.Panel().title(title).description(description).datasource(DATASOURCE).targets(queries)
             .show_header(True))
    steps: list[models.DataTransformerConfig] = []
    if len(queries) > 1:
        steps.append(transformation("merge", {}))
    steps += [*reshape, organize(["Time", "__name__", *hide], rename)]
    return panel.transformations(steps).no_value(no_value)


def timeseries_panel(title: str, description: str, queries: list[Query], unit: str) -> Panel:
    return (timeseries.Panel().title(title).description(description).datasource(DATASOURCE).targets(queries)
            .unit(unit).legend(common_builders.VizLegendOptions().show_legend(True)
                               .display_mode(common.LegendDisplayMode.LIST)
                               .placement(common.LegendPlacement.BOTTOM)))


def state_timeline_panel(title: str, description: str, queries: list[Query]) -> Panel:
    return (statetimeline.Panel().title(title).description(description).datasource(DATASOURCE).targets(queries)
            .mappings(STATE_MAPPING).thresholds(thresholds((None, "green"))).show_value(common.VisibilityMode.NEVER)
            .merge_values(True).row_height(0.8).fill_opacity(80))


def bar_gauge_panel(title: str, description: str, queries: list[Query], names: dict[str, str]) -> Panel:
    panel = (bargauge.Panel().title(title).description(description).datasource(DATASOURCE).targets(queries)
             .unit("none").min(0).display_mode(common.BarGaugeDisplayMode.BASIC)
             .orientation(common.VizOrientation.HORIZONTAL).thresholds(thresholds((None, "red")))
             .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    for field, shown in names.items():
        panel = panel.override_by_name(field, [models.DynamicConfigValue(id_val="displayName", value=shown)])
    return panel


class Board:
    """A dashboard being built: panels get ids and grid places in order; ``keys`` remembers the id of the
    panel that shows each thing, so alert rules can link to it."""

    def __init__(self, uid: str, title: str, description: str, variables: list[Any]) -> None:
        other = HOST_UID if uid == FLEET_UID else FLEET_UID
        self.builder = (builders.Dashboard(title).uid(uid).description(description)
                        .tags(["secure-endpoint", "cisco"]).timezone("browser").readonly()
                        .tooltip(models.DashboardCursorSync.CROSSHAIR).refresh("1m").time("now-6h", "now")
                        .variables(variables).version(1)
                        .link(builders.DashboardLink("Fleet" if other == FLEET_UID else "Host")
                              .type(models.DashboardLinkType.LINK).url(f"/d/{other}")
                              .keep_time(True).include_vars(True)))
        self.next_id = 1
        self.keys: dict[str, int] = {}

    def row(self, title: str) -> None:
        self.builder.with_row(builders.Row(title).id(self._take()))

    def add(self, panel: Panel, width: int, height: int, key: str = "") -> None:
        panel_id = self._take()
        self.builder.with_panel(panel.id(panel_id).span(width).height(height))
        if key:
            self.keys[key] = panel_id

    def _take(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def variables(with_instance: bool, job_of: str = "secure_endpoint_connector_installed") -> list[Any]:
    """The Prometheus data source, the job (of the series ``job_of``), and (host dashboard) one host."""
    found: list[Any] = [
        builders.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        builders.QueryVariable("job").label("Job").datasource(DATASOURCE)
        .query(f"label_values({job_of}, job)")
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED).multi(True).include_all(True).all_value(".+"),
    ]
    if with_instance:
        found.append(builders.QueryVariable("instance").label("Host").datasource(DATASOURCE)
                     .query('label_values(secure_endpoint_connector_installed{job=~"$job"}, instance)')
                     .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED))
    return found


def plain(built: object) -> dict[str, Any]:
    """An SDK object as the plain JSON data Grafana reads (the SDK's encoder, one round trip)."""
    data: dict[str, Any] = json.loads(json.dumps(built, cls=JSONEncoder))
    return data


def dashboard_json(board: Board) -> dict[str, Any]:
    """The board as the JSON Grafana provisions. The SDK gives every variable a zero ``id`` and the interval
    variable's ``auto`` fields, and every table a ``footer`` option Grafana has dropped (a footer is field
    config now); Grafana's schema (@grafana/schema, checked in the tests) knows none of them."""
    data = plain(board.builder.build())
    for variable in data.get("templating", {}).get("list", []):
        for key in ("id", "auto", "auto_min", "auto_count"):
            variable.pop(key, None)
    for panel in data["panels"]:
        if panel["type"] == "table":
            panel["options"].pop("footer", None)
    return data
