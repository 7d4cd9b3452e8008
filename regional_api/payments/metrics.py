"""Business counters of payments, refunds, box-office sales and ticket check-ins."""

from prometheus_client import Counter

PAYMENTS = Counter(
    "regional_payments_total", "Payment attempts by method and outcome", ["method", "outcome"]
)
REVENUE = Counter(
    "regional_revenue_minor_total", "Completed payment amounts in minor units", ["currency"]
)
REFUNDS = Counter("regional_refunds_total", "Refunds recorded", ["currency"])
REFUNDED = Counter("regional_refunded_minor_total", "Refunded amounts in minor units", ["currency"])
BOX_OFFICE_SALES = Counter(
    "regional_box_office_sales_total", "Counter sales by method and outcome", ["method", "outcome"]
)
TICKETS_VALIDATED = Counter(
    "regional_tickets_validated_total", "Ticket check-ins by outcome", ["outcome"]
)
CHARGES_REFUNDED = Counter(
    "regional_charges_refunded_total",
    "Charges returned because their seats could not be sold, or voided after a timeout",
    ["reason"],
)
RECONCILED = Counter(
    "regional_payments_reconciled_total",
    "Payments settled by the reconciler after their replica lost the provider's answer",
    ["outcome"],
)
RECONCILE_ROUNDS = Counter(
    "regional_payments_reconcile_rounds_total",
    "Rounds of the payment reconciler, by result (failed: the database or the provider was down)",
    ["result"],
)
