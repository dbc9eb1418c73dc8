"""Constraints across fields that an OpenAPI schema cannot state, applied to generated cases so
that "valid" examples are valid: a PUT's body names the order of its path, and an order is not
updated before it was created."""

from typing import Any

import schemathesis


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    body = case.body
    mode = getattr(getattr(getattr(case, "meta", None), "generation", None), "mode", None)
    if not isinstance(body, dict) or str(getattr(mode, "value", mode)) != "positive":
        return case
    orders = body.get("orders") if case.path == "/orders/batch" else [body]
    for order in orders if isinstance(orders, list) else []:
        if (
            isinstance(order, dict)
            and isinstance(order.get("updated_at"), str)
            and isinstance(order.get("created_at"), str)
        ):
            order["updated_at"] = order["created_at"]
    if case.method == "PUT" and isinstance(case.path_parameters, dict) and "order_no" in body:
        case.path_parameters["order_no"] = body["order_no"]
    return case
