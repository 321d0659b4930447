#!/usr/bin/env python3
"""Check the PromQL of the Grafana dashboard and the alerting rules against gwen-segment's metrics.

Reads the expressions of monitoring/grafana-dashboard.json (panel targets, annotation queries
and template variable queries) and of monitoring/alerts.yaml, and fails when one of them uses:
  - a metric name that the metrics text does not contain, written before the braces, quoted
    inside them (`{"name"}`, Prometheus 3) or as `__name__="name"`. Histograms count with their
    `_bucket`, `_sum` and `_count` series, counters with their `_total` series. A selector
    without a metric name, or with a `__name__` pattern, fails too;
  - a label that the metric does not carry, in a matcher or in `by`, `without`, `on` or
    `ignoring`. The labels Prometheus adds to every target (`job`, `instance`, and those of the
    Prometheus Operator's Kubernetes discovery) are allowed everywhere;
  - a counter series outside rate(), irate(), increase() or resets(), or a gauge inside one;
  - a function name PromQL does not have;
  - an unbalanced parenthesis, bracket or brace, or a range `[5m]` with no selector before it.
It also checks the dashboard itself: every panel and annotation query goes through the
`datasource` variable, every `$variable` in a query is defined, and panel ids are unique. Grafana's
server-side expressions (math, reduce and the like) name no metric and are skipped.

A query that uses a custom, constant or textbox variable is checked once for each combination of
the values the dashboard JSON lists for them. Outside a string, where it could be a metric name,
any other variable fails, except interval variables and Grafana's `$__rate_interval` and
the like, which are durations.

The metrics text is monitoring/metrics-sample.txt, a scrape of `/metrics`. Label names are only
known from series that have samples, so the scrape must come from a process that received
webhooks, delivered to Segment and dead-lettered one. To refresh it, run `gwen-segment capture
--listen 127.0.0.1:18088 --fail-status 500 --fail-count 1` and, with SEGMENT_WRITE_KEY set,
`gwen-segment standalone --segment-url http://127.0.0.1:18088 --webhook-keys dev-key`. Then post
the webhook fixtures, one webhook without `userId` and one with a wrong key, wait 10 s for the
consumer statistics, and save the output of `curl http://127.0.0.1:9090/metrics`.

With --registry-source src/metrics.rs, the metric families of the text are also compared with the
names that file registers, so that a metric added or renamed in the code fails until the sample
is scraped again.

Needs PyYAML. Used by scripts/check-deploy.
"""

import argparse
import difflib
import itertools
import json
import math
import re
import sys

import yaml

# Labels that Prometheus attaches to every scraped series: `job` and `instance` always, the rest
# through the Kubernetes service discovery of the Prometheus Operator's ServiceMonitor.
TARGET_LABELS = frozenset(
    {"job", "instance", "namespace", "pod", "service", "container", "endpoint", "__name__"}
)

COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase", "resets"})

AGGREGATIONS = frozenset(
    {
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    }
)

# The functions in promql/parser/functions.go of the Prometheus source, experimental ones included.
FUNCTIONS = AGGREGATIONS | COUNTER_FUNCTIONS | frozenset(
    {
        "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
        "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
        "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
        "delta", "deriv", "double_exponential_smoothing", "end", "exp", "first_over_time",
        "floor", "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
        "histogram_quantiles", "histogram_stddev", "histogram_stdvar", "histogram_sum", "hour",
        "idelta", "info", "integral", "label_join", "label_replace", "last_over_time", "ln",
        "log10", "log2", "mad_over_time", "max_over_time", "min_over_time", "minute", "month",
        "pi", "predict_linear", "present_over_time", "quantile_over_time", "rad", "range",
        "round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc",
        "sort_desc", "sqrt", "start", "stddev_over_time", "stdvar_over_time", "step",
        "sum_over_time", "tan", "tanh", "time", "timestamp", "ts_of_first_over_time",
        "ts_of_last_over_time", "ts_of_max_over_time", "ts_of_min_over_time", "vector", "year",
    }
)

GROUPING_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
OTHER_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"})

# A Grafana variable: $name, ${name} or ${name:format}, or the deprecated [[name]]. Outside
# strings it is replaced by a duration before parsing, because that is where Grafana's own
# interval variables stand.
GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")
# The variables Grafana defines itself.
GRAFANA_BUILTINS = frozenset(
    {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms"}
)
# Variable types whose values the dashboard JSON lists, so each value is substituted and checked.
LISTED_VALUE_TYPES = frozenset({"custom", "constant", "textbox"})
# Variable types whose values are durations, which the check replaces by one duration.
DURATION_TYPES = frozenset({"interval"})
# The maximum number of value combinations checked for one expression.
MAX_COMBINATIONS = 1000
# The `type` of Grafana's server-side expressions, for targets saved without their datasource.
GRAFANA_EXPRESSION_TYPES = frozenset(
    {"math", "reduce", "resample", "classic_conditions", "threshold", "sql"}
)

TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>(?:\d+(?:\.\d+)?(?:ms|[smhdwy])?)+|0x[0-9a-fA-F]+)
  | (?P<identifier>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<operator>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}\[\]@])
    """,
    re.VERBOSE,
)

BRACKET_PAIRS = {")": "(", "]": "[", "}": "{"}

SAMPLE_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s")
SAMPLE_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="(?:[^"\\]|\\.)*"')
TYPE_LINE = re.compile(r"^# TYPE ([A-Za-z_:][A-Za-z0-9_:]*) (\w+)")
REGISTER_CALL = re.compile(r'registry\.register\(\s*"([a-z0-9_]+)"')
REGISTRY_PREFIX = re.compile(r'Registry::with_prefix\("([a-z0-9_]+)"\)')


class Exposition:
    """The series of a metrics text: the labels and the kind of each series name."""

    def __init__(self, text):
        self.families = {}
        self.labels = {}
        for line in text.splitlines():
            type_match = TYPE_LINE.match(line)
            if type_match:
                self.families[type_match.group(1)] = type_match.group(2)
                continue
            if line.startswith("#") or not line.strip():
                continue
            sample = SAMPLE_LINE.match(line)
            if sample:
                names = set(SAMPLE_LABEL.findall(sample.group(2) or ""))
                self.labels.setdefault(sample.group(1), set()).update(names)

    def kind(self, series):
        """Return `counter` for series that only grow, `gauge` for the others."""
        family_type = self.families.get(series)
        if family_type is None:
            for suffix in ("_total", "_bucket", "_sum", "_count", "_created"):
                if series.endswith(suffix) and series[: -len(suffix)] in self.families:
                    family_type = self.families[series[: -len(suffix)]]
                    break
        return "counter" if family_type in ("counter", "histogram", "summary") else "gauge"


class Expression:
    """One PromQL expression with the place it came from, for the error messages."""

    def __init__(self, source, text, label_values_label=None):
        self.source = source
        self.text = text
        self.label_values_label = label_values_label


def tokenize(text):
    """Split PromQL into (kind, value) tokens. Raises ValueError on text it cannot read."""
    tokens = []
    position = 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match:
            raise ValueError(f"cannot parse {text[position:position + 20]!r}")
        position = match.end()
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))
    return tokens


def replace_grafana_variables(text):
    """Replace Grafana variables outside strings by a duration, so the text parses as PromQL."""
    parts = split_strings(text)
    for index in range(0, len(parts), 2):
        parts[index] = GRAFANA_VARIABLE.sub("1m", parts[index])
    return "".join(parts)


def split_strings(text):
    """Split text into the parts outside strings (even indices) and the quoted strings (odd)."""
    return re.split(r'("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')', text)


def check_expression(expression, exposition, recorded, errors):
    """Append to errors every unknown metric, label, function or misused counter in expression."""

    def fail(message):
        errors.append(f"{expression.source}: {message}\n    expr: {expression.text}")

    try:
        tokens = tokenize(replace_grafana_variables(expression.text))
    except ValueError as error:
        fail(str(error))
        return

    # The loop below skips ranges and matchers up to their closing bracket, so an unclosed one
    # would hide the rest of the expression.
    bracket_error = find_unbalanced_bracket(tokens)
    if bracket_error:
        fail(bracket_error)
        return

    known_series = set(exposition.labels) | recorded
    used_metrics = []
    grouping_labels = []
    # The open parentheses: a function name, or None for a plain one.
    stack = []
    # An aggregation written as `sum by (label) (...)`, whose parenthesis follows the grouping.
    pending_aggregation = None
    index = 0
    while index < len(tokens):
        kind, value = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else None

        if kind == "operator" and value == "[":
            # A variable whose value is empty leaves a range with nothing before it.
            previous_kind, previous = tokens[index - 1] if index > 0 else (None, "the start")
            if previous_kind != "identifier" and previous not in ("}", ")"):
                fail(f"a range [...] follows {previous!r}, where a selector or a subquery "
                     "expression was expected")
            while index < len(tokens) and tokens[index][1] != "]":
                index += 1
        elif kind == "operator" and value == "(":
            stack.append(pending_aggregation)
            pending_aggregation = None
        elif kind == "operator" and value == ")":
            if stack:
                stack.pop()
        elif kind == "identifier" and value in GROUPING_KEYWORDS:
            if following == "(":
                index += 2
                while index < len(tokens) and tokens[index][1] != ")":
                    if tokens[index][0] == "identifier":
                        grouping_labels.append(tokens[index][1])
                    elif tokens[index][0] == "string":
                        grouping_labels.append(unquote(tokens[index][1]))
                    index += 1
        elif kind == "identifier" and value in OTHER_KEYWORDS:
            pass
        elif kind == "identifier" and value in AGGREGATIONS and following in ("by", "without"):
            pending_aggregation = value
        elif kind == "identifier" and following == "(":
            if value not in FUNCTIONS:
                fail(f"{value}() is not a PromQL function")
            stack.append(value)
            index += 1
        elif kind == "identifier" or (kind == "operator" and value == "{"):
            function = next((name for name in reversed(stack) if name is not None), None)
            names = [value] if kind == "identifier" else []
            matchers = []
            problems = []
            if kind == "identifier" and following == "{":
                index += 1
            if tokens[index][1] == "{":
                braced_names, matchers, problems, index = read_matchers(tokens, index)
                names.extend(braced_names)
                for problem in problems:
                    fail(problem)
            if not names:
                # A __name__ pattern is already reported among the problems.
                if not problems:
                    fail("a selector names no metric; this check needs the metric name of "
                         "every selector")
            elif len(names) > 1:
                fail(f"a selector sets the metric name more than once: {names}")
            else:
                used_metrics.append(names[0])
                check_series(names[0], matchers, function, expression, exposition,
                             known_series, fail)
        index += 1

    available = set(TARGET_LABELS)
    for metric in used_metrics:
        available |= exposition.labels.get(metric, set())
    for label in grouping_labels:
        if label not in available:
            fail(f"label {label!r} in a grouping clause is on none of {sorted(set(used_metrics))}")
    if expression.label_values_label and expression.label_values_label not in available:
        fail(f"label_values() asks for {expression.label_values_label!r}, which "
             f"{sorted(set(used_metrics))} do not carry")


def find_unbalanced_bracket(tokens):
    """Return a message for the first unmatched (, [ or {, or None when they all pair up."""
    open_brackets = []
    for kind, value in tokens:
        if kind != "operator":
            continue
        if value in BRACKET_PAIRS.values():
            open_brackets.append(value)
        elif value in BRACKET_PAIRS:
            if not open_brackets:
                return f"unbalanced brackets: {value!r} has no opening {BRACKET_PAIRS[value]!r}"
            opening = open_brackets.pop()
            if opening != BRACKET_PAIRS[value]:
                return f"unbalanced brackets: {opening!r} is closed by {value!r}"
    if open_brackets:
        return f"unbalanced brackets: {open_brackets[-1]!r} is never closed"
    return None


def read_matchers(tokens, index):
    """Read the matchers of a selector, from the `{` at index to its `}`.

    Returns the metric names set inside the braces (a Prometheus 3 quoted name such as
    {"gwen_x_total"}, or __name__="gwen_x_total"), the other label names, the problems found and
    the index of the `}`. The brackets must be balanced.
    """
    names = []
    labels = []
    problems = []
    index += 1
    while tokens[index][1] != "}":
        kind, value = tokens[index]
        if kind not in ("identifier", "string"):
            index += 1
            continue

        label = unquote(value) if kind == "string" else value
        operator = tokens[index + 1][1]
        if operator not in ("=", "!=", "=~", "!~"):
            if kind == "string":
                names.append(label)
            else:
                problems.append(f"matcher {label} has no operator and value")
            index += 1
            continue

        matched = tokens[index + 2]
        if matched[0] != "string":
            problems.append(f"matcher {label}{operator} has no quoted value")
            index += 2
            continue
        if label != "__name__":
            labels.append(label)
        elif operator == "=":
            names.append(unquote(matched[1]))
        else:
            problems.append(f"__name__{operator}{matched[1]} selects metrics by pattern; this "
                            'check reads only __name__="name", so write the metric name')
        index += 3
    return names, labels, problems, index


def unquote(string_token):
    """Return the text of a PromQL string literal, each backslash escape reduced to its character.

    That is right for the escaped quotes and backslashes that names may need, and turns other
    escapes such as \\n into a plain letter.
    """
    if string_token.startswith("`"):
        return string_token[1:-1]
    return re.sub(r"\\(.)", r"\1", string_token[1:-1])


def check_series(name, matchers, function, expression, exposition, known_series, fail):
    """Check one series selector: its name, its matcher labels and the function around it."""
    if name not in known_series:
        close = difflib.get_close_matches(name, known_series, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        fail(f"metric {name} is not in the metrics text{hint}")
        return

    labels = exposition.labels.get(name, set()) | TARGET_LABELS
    for label in matchers:
        if label not in labels:
            own_labels = sorted(labels - TARGET_LABELS)
            fail(f"label {label!r} is not a label of {name}; it has {own_labels}")

    # A label_values() selector only lists label values, so the kind does not matter there.
    if expression.label_values_label is not None:
        return
    kind = exposition.kind(name)
    if kind == "counter" and function not in COUNTER_FUNCTIONS:
        fail(f"{name} is a counter; wrap it in rate() or increase()")
    if kind == "gauge" and function in COUNTER_FUNCTIONS:
        fail(f"{name} is a gauge; {function}() is meant for counters")


def dashboard_expressions(dashboard, errors):
    """Collect the queries of a dashboard and check the variables, datasources and panel ids.

    A query that uses custom, constant or textbox variables is returned once for each combination
    of the values those variables list, with the values substituted.
    """
    variables = {}
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        variables[variable.get("name")] = variable

    expressions = variable_query_expressions(variables, errors)
    expressions.extend(annotation_expressions(dashboard, errors))
    expressions.extend(panel_expressions(dashboard, errors))

    substituted = []
    for expression in expressions:
        check_variable_uses(expression, variables, errors)
        substituted.extend(substitute_listed_values(expression, variables, errors))
    return substituted


def variable_query_expressions(variables, errors):
    """Collect the PromQL of the query variables."""
    expressions = []
    for name, variable in variables.items():
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        source = f"dashboard variable {name!r}"
        expressions.extend(grafana_query_expressions(source, query, errors))
    return expressions


def annotation_expressions(dashboard, errors):
    """Collect the PromQL of the annotation queries, in `expr` or in `target.expr`."""
    expressions = []
    for annotation in (dashboard.get("annotations") or {}).get("list") or []:
        target = annotation.get("target")
        exprs = []
        if annotation.get("expr") is not None:
            exprs.append(annotation["expr"])
        if isinstance(target, dict) and target.get("expr") not in (None, *exprs):
            exprs.append(target["expr"])
        datasource = annotation.get("datasource")
        datasource_type = datasource.get("type") if isinstance(datasource, dict) else None
        # Grafana's built-in annotation carries no query, and the expr of another data source
        # type, such as Loki's, is not PromQL.
        if not exprs or datasource_type not in (None, "prometheus"):
            continue

        source = f"dashboard annotation {annotation.get('name', '(unnamed)')!r}"
        if datasource_uid(datasource) != "${datasource}":
            errors.append(f"{source}: datasource {json.dumps(datasource)} is not "
                          "${datasource}")
        for expr in exprs:
            if isinstance(expr, str):
                expressions.append(Expression(source, expr))
            else:
                errors.append(f"{source}: expr {json.dumps(expr)} is not a string")
    return expressions


def panel_expressions(dashboard, errors):
    """Collect the PromQL of the panel targets, and check panel ids and datasources."""
    expressions = []
    panel_ids = set()
    for panel in walk_panels(dashboard.get("panels") or []):
        title = panel.get("title", "(untitled)")
        if panel.get("id") in panel_ids:
            errors.append(f"dashboard panel {title!r}: id {panel.get('id')} is used twice")
        panel_ids.add(panel.get("id"))
        if panel.get("type") == "row":
            continue

        datasource = panel.get("datasource")
        if datasource_uid(datasource) != "${datasource}":
            errors.append(f"dashboard panel {title!r}: datasource {json.dumps(datasource)} is "
                          "not ${datasource}")
        for target in panel.get("targets") or []:
            source = f"dashboard panel {title!r} query {target.get('refId')}"
            expression = target_expression(source, target, errors)
            if expression is not None:
                expressions.append(expression)
    return expressions


def target_expression(source, target, errors):
    """Return the PromQL of one panel target, or None for a Grafana expression or an error."""
    datasource = target.get("datasource")
    if is_grafana_expression(target):
        # Math, reduce and the other server-side expressions read other queries by refId, so
        # they name no metric.
        return None
    # A target without a datasource of its own uses the panel's.
    if datasource is not None and datasource_uid(datasource) != "${datasource}":
        errors.append(f"{source}: datasource {json.dumps(datasource)} is not ${{datasource}}")

    expr = target.get("expr")
    if not isinstance(expr, str) or not expr.strip():
        errors.append(f"{source}: expr is missing or empty; a Prometheus query needs PromQL "
                      'there, and a Grafana expression needs the datasource {"type": "__expr__", '
                      '"uid": "__expr__"}')
        return None
    return Expression(source, expr)


def is_grafana_expression(target):
    """Return True when a panel target is a Grafana server-side expression, not a query."""
    datasource = target.get("datasource")
    if isinstance(datasource, dict) and datasource.get("type") == "__expr__":
        return True
    if datasource_uid(datasource) == "__expr__":
        return True
    return "expr" not in target and target.get("type") in GRAFANA_EXPRESSION_TYPES


def datasource_uid(datasource):
    """Return the uid of a `datasource` field, which is an object, a data source name or null."""
    if isinstance(datasource, dict):
        return datasource.get("uid")
    return datasource


def check_variable_uses(expression, variables, errors):
    """Report variables that are undefined, or that may name a metric whose values are unknown.

    Outside strings, a variable can be a metric name. Only the listed values of custom, constant
    and textbox variables can be checked there, and interval variables and Grafana's own ones are
    durations. Inside strings, a variable is a label value, so any variable is allowed.
    """
    for index, part in enumerate(split_strings(expression.text)):
        for match in GRAFANA_VARIABLE.finditer(part):
            name = variable_name(match)
            if name in GRAFANA_BUILTINS:
                continue
            if name not in variables:
                errors.append(f"{expression.source}: variable ${name} is not defined\n"
                              f"    expr: {expression.text}")
                continue
            variable_type = variables[name].get("type")
            inside_string = index % 2 == 1
            if inside_string or variable_type in LISTED_VALUE_TYPES | DURATION_TYPES:
                continue
            errors.append(f"{expression.source}: variable ${name} is a {variable_type} variable "
                          "outside a string, where it can be a metric name whose values this "
                          "check cannot list; use it in a label matcher or make it a custom "
                          f"variable\n    expr: {expression.text}")


def substitute_listed_values(expression, variables, errors):
    """Return one copy of expression per combination of its custom, constant and textbox values."""
    names = []
    for match in GRAFANA_VARIABLE.finditer(expression.text):
        name = variable_name(match)
        listed = name in variables and variables[name].get("type") in LISTED_VALUE_TYPES
        if listed and name not in names:
            names.append(name)
    if not names:
        return [expression]

    value_lists = [listed_values(variables[name]) for name in names]
    for name, values in zip(names, value_lists):
        if not values:
            errors.append(f"{expression.source}: variable ${name} lists no value to check")
            return []
    combination_count = math.prod(len(values) for values in value_lists)
    if combination_count > MAX_COMBINATIONS:
        errors.append(f"{expression.source}: its variables {names} have {combination_count} "
                      f"combinations of values, more than the {MAX_COMBINATIONS} this check "
                      "tries")
        return []

    copies = []
    for combination in itertools.product(*value_lists):
        assignment = dict(zip(names, combination))
        text = GRAFANA_VARIABLE.sub(
            lambda match: assignment.get(variable_name(match), match.group()), expression.text
        )
        settings = ", ".join(f"${name}={value!r}" for name, value in assignment.items())
        copies.append(Expression(f"{expression.source} with {settings}", text,
                                 expression.label_values_label))
    return copies


def listed_values(variable):
    """List the values a custom, constant or textbox variable has in the dashboard JSON.

    These are the values in its query, its options and its current value, and the allValue of
    a variable with includeAll.
    """
    # NOTE: a viewer may still type another value into a textbox, or into a custom variable
    # where Grafana allows custom values, and a multi-value selection is substituted as a regex
    # such as (a|b). Neither is checked.
    values = []
    query = variable.get("query")
    if isinstance(query, str) and variable.get("type") == "custom":
        values.extend(custom_variable_values(query))
    elif isinstance(query, str):
        values.append(query)
    for option in variable.get("options") or []:
        if isinstance(option, dict):
            values.append(option.get("value"))
    current = (variable.get("current") or {}).get("value")
    values.extend(current if isinstance(current, list) else [current])
    if variable.get("includeAll") and variable.get("allValue"):
        values.append(variable["allValue"])

    unique = []
    for value in values:
        if isinstance(value, str) and value != "$__all" and value not in unique:
            unique.append(value)
    return unique


def custom_variable_values(query):
    """Split the query of a custom variable, `a, b` or `text : value, ...`, into its values."""
    values = []
    for item in re.split(r"(?<!\\),", query):
        item = item.strip()
        if not item:
            continue
        if " : " in item:
            item = item.split(" : ", 1)[1].strip()
        values.append(item.replace("\\,", ","))
    return values


def variable_name(match):
    """Return the name of a GRAFANA_VARIABLE match, whichever of its forms it has."""
    return next(group for group in match.groups() if group)


def walk_panels(panels):
    """Yield every panel, including those inside collapsed rows."""
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels") or [])


def grafana_query_expressions(source, query, errors):
    """Turn a Prometheus template variable query of Grafana into PromQL expressions."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", query or "")
    if match:
        return [Expression(source, match.group(1), label_values_label=match.group(2))]
    match = re.fullmatch(r"\s*query_result\((.*)\)\s*", query or "")
    if match:
        return [Expression(source, match.group(1))]
    errors.append(f"{source}: query {query!r} is not label_values(selector, label) or "
                  "query_result(expr), the forms this check reads")
    return []


def rule_expressions(rules_document, path):
    """Collect the expressions and the recorded series names of a Prometheus rules file."""
    expressions = []
    recorded = set()
    for group in rules_document.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record")
            if "record" in rule:
                recorded.add(rule["record"])
            expressions.append(Expression(f"{path} rule {name}", str(rule["expr"])))
    return expressions, recorded


def check_registry(exposition, source_path, metrics_path, errors):
    """Compare the families of the metrics text with those the Rust source registers."""
    with open(source_path, encoding="utf-8") as file:
        source = file.read()
    prefix_match = REGISTRY_PREFIX.search(source)
    prefix = f"{prefix_match.group(1)}_" if prefix_match else ""
    registered = {prefix + name for name in REGISTER_CALL.findall(source)}
    if not registered:
        errors.append(f"{source_path}: no registry.register(\"...\") calls found")
        return
    scraped = set(exposition.families)
    for name in sorted(registered - scraped):
        errors.append(f"{metrics_path}: no {name}, which {source_path} registers; "
                      "scrape the sample again (see this script's docstring)")
    for name in sorted(scraped - registered):
        errors.append(f"{metrics_path}: {name} is not registered in {source_path} any more; "
                      "scrape the sample again (see this script's docstring)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", required=True,
                        help="Prometheus text scraped from /metrics")
    parser.add_argument("--dashboard", action="append", default=[],
                        help="Grafana dashboard JSON; repeatable")
    parser.add_argument("--rules", action="append", default=[],
                        help="Prometheus rules YAML; repeatable")
    parser.add_argument("--registry-source",
                        help="Rust file whose registry.register calls list every metric family")
    args = parser.parse_args()

    with open(args.metrics, encoding="utf-8") as file:
        exposition = Exposition(file.read())
    errors = []
    if not exposition.labels:
        errors.append(f"{args.metrics}: no samples")
    if args.registry_source:
        check_registry(exposition, args.registry_source, args.metrics, errors)

    expressions = []
    recorded = set()
    for path in args.rules:
        with open(path, encoding="utf-8") as file:
            rule_list, rule_records = rule_expressions(yaml.safe_load(file), path)
        expressions.extend(rule_list)
        recorded |= rule_records
    for path in args.dashboard:
        with open(path, encoding="utf-8") as file:
            dashboard = json.load(file)
        expressions.extend(dashboard_expressions(dashboard, errors))

    for expression in expressions:
        check_expression(expression, exposition, recorded, errors)

    for error in errors:
        print(f"ERROR {error}", file=sys.stderr)
    if errors:
        sys.exit(1)
    metric_count = len(exposition.families)
    print(f"{len(expressions)} expressions use only the series and labels of {args.metrics} "
          f"({metric_count} metric families)")


if __name__ == "__main__":
    main()
