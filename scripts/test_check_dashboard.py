#!/usr/bin/env python3
"""Tests of scripts/check-dashboard.py: the real monitoring files pass, and broken copies fail.

Each test writes a changed copy of monitoring/grafana-dashboard.json or monitoring/alerts.yaml
into a temporary directory and runs the checker on it, the real files standing in for the rest.
Run with `python3 scripts/test_check_dashboard.py` or `python3 -m unittest` from scripts/.
Needs PyYAML, like the checker.
"""

import copy
import json
import os
import subprocess
import sys
import tempfile
import unittest

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKER = os.path.join(REPO, "scripts", "check-dashboard.py")
METRICS = os.path.join(REPO, "monitoring", "metrics-sample.txt")
DASHBOARD = os.path.join(REPO, "monitoring", "grafana-dashboard.json")
ALERTS = os.path.join(REPO, "monitoring", "alerts.yaml")
REGISTRY_SOURCE = os.path.join(REPO, "src", "metrics.rs")

PROMETHEUS_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def load_dashboard():
    with open(DASHBOARD, encoding="utf-8") as file:
        return json.load(file)


def load_alerts():
    with open(ALERTS, encoding="utf-8") as file:
        return yaml.safe_load(file)


def first_query_panel(dashboard):
    """Return the first panel with targets. Tests change its first target."""
    return next(panel for panel in dashboard["panels"] if panel.get("targets"))


def with_panel_expr(expr):
    """Return a copy of the dashboard whose first panel query is expr."""
    dashboard = load_dashboard()
    first_query_panel(dashboard)["targets"][0]["expr"] = expr
    return dashboard


def with_variable(variable, expr):
    """Return a copy of the dashboard with one more template variable and a query using it."""
    dashboard = with_panel_expr(expr)
    dashboard["templating"]["list"].append(variable)
    return dashboard


class CheckDashboardTest(unittest.TestCase):
    def run_checker(self, dashboard=None, alerts=None):
        """Run the checker on the real files, with dashboard or alerts replaced when given."""
        with tempfile.TemporaryDirectory() as directory:
            dashboard_path = DASHBOARD
            alerts_path = ALERTS
            if dashboard is not None:
                dashboard_path = os.path.join(directory, "dashboard.json")
                with open(dashboard_path, "w", encoding="utf-8") as file:
                    json.dump(dashboard, file)
            if alerts is not None:
                alerts_path = os.path.join(directory, "alerts.yaml")
                with open(alerts_path, "w", encoding="utf-8") as file:
                    yaml.safe_dump(alerts, file)
            result = subprocess.run(
                [sys.executable, CHECKER, "--metrics", METRICS, "--rules", alerts_path,
                 "--dashboard", dashboard_path],
                capture_output=True, text=True, timeout=60, check=False,
            )
        self.assertNotIn("Traceback", result.stderr)
        return result

    def assert_rejected(self, result, *fragments):
        self.assertEqual(result.returncode, 1, result.stdout)
        for fragment in fragments:
            self.assertIn(fragment, result.stderr)

    def assert_accepted(self, result):
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")

    def test_repository_files_pass(self):
        # The same arguments as scripts/check-deploy.
        result = subprocess.run(
            [sys.executable, CHECKER, "--metrics", METRICS, "--registry-source", REGISTRY_SOURCE,
             "--rules", ALERTS, "--dashboard", DASHBOARD],
            capture_output=True, text=True, timeout=60, check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("expressions use only the series and labels", result.stdout)

    def test_annotation_unknown_metric_rejected(self):
        cases = {
            "expr": {"expr": "changes(gwen_build_info_wrong[5m]) > 0"},
            "target.expr": {"target": {"expr": "changes(gwen_build_info_wrong[5m]) > 0",
                                       "refId": "Anno"}},
        }
        for field, query in cases.items():
            with self.subTest(field=field):
                dashboard = load_dashboard()
                annotation = {"name": "Restarts", "enable": True,
                              "datasource": PROMETHEUS_DATASOURCE, **query}
                dashboard["annotations"]["list"].append(annotation)
                result = self.run_checker(dashboard=dashboard)
                self.assert_rejected(result, "annotation 'Restarts'",
                                     "metric gwen_build_info_wrong is not in the metrics text")

    def test_annotation_other_datasource_skipped(self):
        # A Loki annotation's expr is LogQL, which this check does not read.
        dashboard = load_dashboard()
        dashboard["annotations"]["list"].append({
            "name": "Deploy logs", "enable": True, "datasource": {"type": "loki", "uid": "logs"},
            "expr": '{app="gwen-segment"} |= "deploy"',
        })
        self.assert_accepted(self.run_checker(dashboard=dashboard))

    def test_annotation_known_metric_accepted(self):
        dashboard = load_dashboard()
        dashboard["annotations"]["list"].append({
            "name": "Halts", "enable": True, "datasource": PROMETHEUS_DATASOURCE,
            "expr": "changes(gwen_forwarder_halted[5m]) > 0",
        })
        self.assert_accepted(self.run_checker(dashboard=dashboard))

    def test_listed_variable_values_checked(self):
        expr = "sum(rate(${metric}[5m]))"
        variables = {
            "custom": {"type": "custom", "name": "metric",
                       "query": "gwen_receiver_webhooks_accepted_total,gwen_wrong_metric_total"},
            "custom text : value": {
                "type": "custom", "name": "metric",
                "query": "good : gwen_receiver_webhooks_accepted_total, "
                         "bad : gwen_wrong_metric_total"},
            "custom options only": {
                "type": "custom", "name": "metric", "query": "",
                "options": [{"text": "bad", "value": "gwen_wrong_metric_total"}]},
            "custom allValue": {
                "type": "custom", "name": "metric", "includeAll": True,
                "allValue": "gwen_wrong_metric_total",
                "query": "gwen_receiver_webhooks_accepted_total"},
            "constant": {"type": "constant", "name": "metric",
                         "query": "gwen_wrong_metric_total"},
            "textbox": {"type": "textbox", "name": "metric", "query": "gwen_wrong_metric_total"},
        }
        for case, variable in variables.items():
            with self.subTest(case=case):
                result = self.run_checker(dashboard=with_variable(variable, expr))
                self.assert_rejected(result, "$metric='gwen_wrong_metric_total'",
                                     "metric gwen_wrong_metric_total is not in the metrics text")

    def test_listed_variable_known_values_accepted(self):
        variable = {"type": "custom", "name": "metric",
                    "query": "gwen_receiver_webhooks_accepted_total,gwen_segment_retries_total"}
        dashboard = with_variable(variable, "sum(rate(${metric}[5m]))")
        self.assert_accepted(self.run_checker(dashboard=dashboard))

    def test_empty_variable_value_rejected(self):
        variable = {"type": "textbox", "name": "metric", "query": ""}
        result = self.run_checker(dashboard=with_variable(variable, "sum(rate(${metric}[5m]))"))
        self.assert_rejected(result, "$metric=''", "a range [...] follows '('")

    def test_query_variable_as_metric_rejected(self):
        # $namespace is a query variable: its values come from Prometheus, not from the JSON.
        result = self.run_checker(dashboard=with_panel_expr("sum(rate($namespace[5m]))"))
        self.assert_rejected(result, "variable $namespace is a query variable outside a string")

    def test_quoted_metric_name_checked(self):
        expr = 'sum(rate({"gwen_wrong_metric_total"}[5m]))'
        result = self.run_checker(dashboard=with_panel_expr(expr))
        self.assert_rejected(result, "metric gwen_wrong_metric_total is not in the metrics text")

        alerts = load_alerts()
        alerts["groups"][0]["rules"][0]["expr"] = expr
        result = self.run_checker(alerts=alerts)
        self.assert_rejected(result, "metric gwen_wrong_metric_total is not in the metrics text")

    def test_quoted_metric_name_accepted(self):
        expr = ('sum by ("job") (rate({"gwen_receiver_webhooks_accepted_total", '
                '"job"=~"$job"}[5m]))')
        self.assert_accepted(self.run_checker(dashboard=with_panel_expr(expr)))

    def test_unbalanced_brackets_rejected(self):
        cases = [
            ("rate(gwen_receiver_webhooks_accepted_total[5m) / rate(gwen_wrong_total[5m]))",
             "'[' is closed by ')'"),
            ("sum(rate(gwen_receiver_webhooks_accepted_total[5m])", "'(' is never closed"),
            ('sum(rate(gwen_receiver_webhooks_accepted_total{job="x"[5m]))',
             "'{' is closed by ')'"),
            ("sum(rate(gwen_receiver_webhooks_accepted_total[5m])))", "')' has no opening '('"),
        ]
        for expr, detail in cases:
            with self.subTest(expr=expr):
                result = self.run_checker(dashboard=with_panel_expr(expr))
                self.assert_rejected(result, f"unbalanced brackets: {detail}", expr)

    def test_null_panel_datasource_rejected(self):
        dashboard = load_dashboard()
        first_query_panel(dashboard)["datasource"] = None
        result = self.run_checker(dashboard=dashboard)
        self.assert_rejected(result, "datasource null is not ${datasource}")

    def test_null_target_datasource_accepted(self):
        # A target without a datasource of its own uses the panel's.
        dashboard = load_dashboard()
        first_query_panel(dashboard)["targets"][0]["datasource"] = None
        self.assert_accepted(self.run_checker(dashboard=dashboard))

    def test_grafana_expression_target_skipped(self):
        dashboard = load_dashboard()
        first_query_panel(dashboard)["targets"].append({
            "refId": "Z", "type": "math", "expression": "$A * 2",
            "datasource": {"type": "__expr__", "uid": "__expr__"},
        })
        self.assert_accepted(self.run_checker(dashboard=dashboard))

    def test_target_without_expr_rejected(self):
        dashboard = load_dashboard()
        first_query_panel(dashboard)["targets"].append({"refId": "Z"})
        result = self.run_checker(dashboard=dashboard)
        self.assert_rejected(result, "query Z: expr is missing or empty")

    def test_name_matcher_is_metric_name(self):
        expr = 'sum(rate({__name__="gwen_receiver_webhooks_accepted_total"}[5m]))'
        self.assert_accepted(self.run_checker(dashboard=with_panel_expr(expr)))

        expr = 'sum(rate({__name__="gwen_x_total"}[5m]))'
        result = self.run_checker(dashboard=with_panel_expr(expr))
        self.assert_rejected(result, "metric gwen_x_total is not in the metrics text")
        self.assertNotIn("metric __name__", result.stderr)


if __name__ == "__main__":
    unittest.main()
