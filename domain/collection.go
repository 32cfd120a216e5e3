package domain

// OfferKindCollection is an offer that bundles apps: buying it buys one
// linked subscription per bundled app.
const OfferKindCollection = "collection"
