"""How the CLI prints the owner's numbers (`leadflow kpi`, the end of `leadflow demo`)."""

from __future__ import annotations


def print_kpis(k: dict) -> None:
    def fmt(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds:.1f}s"

    def pct(rate: float | None) -> str:
        return "-" if rate is None else f"{rate * 100:.0f}%"

    print(f"leads {k['leads']} · temperature {k['temperature']}")
    print(f"first response p50 {fmt(k['first_response_s']['p50'])} p90 {fmt(k['first_response_s']['p90'])} · "
          f"acceptance p50 {fmt(k['acceptance_s']['p50'])} p90 {fmt(k['acceptance_s']['p90'])}")  # fmt: skip
    print(f"booked {k['booked']} (conversion {pct(k['conversion'])}) · confirmed {k['confirmed']} · "
          f"no-show {pct(k['no_show_rate'])} · SLA breaches {k['sla_breaches']} ({pct(k['sla_breach_rate'])})")  # fmt: skip
    for title, key in (
        ("by channel", "by_channel"),
        ("by source", "by_source"),
        ("by specialist", "by_owner"),
    ):
        print(f"{title}:")
        for name, v in k[key].items():
            print(f"  {name:<12} leads {v['leads']:>3}  first reply p50 {fmt(v['first_response_s']['p50']):>7}  "
                  f"conversion {pct(v['conversion']):>4}  SLA breaches {v['sla_breaches']}")  # fmt: skip
