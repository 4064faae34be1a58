"""The floor for a Python plugin: a nagiosplugin check that measures nothing."""

from __future__ import annotations

import nagiosplugin


class Nothing(nagiosplugin.Resource):  # type: ignore[misc]
    def probe(self) -> list[nagiosplugin.Metric]:
        return [nagiosplugin.Metric("value", 1, context="value")]


@nagiosplugin.guarded  # type: ignore[untyped-decorator]
def main() -> None:
    nagiosplugin.Check(Nothing(), nagiosplugin.ScalarContext("value", "2", "3")).main()


if __name__ == "__main__":
    main()
