# Globex's order (JSON) to the canonical order.
{
  orderId: .id,
  partner: "globex",
  buyer: .customer,
  currency: (.currency // "EUR"),
  lines: [.items[] | {sku: .product, qty: .quantity, price: .unitPrice}]
}
