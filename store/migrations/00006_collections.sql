-- +goose Up
-- Offers: collections and set-up instructions.
-- Collections: an offer of kind collection bundles apps; buying it buys one
-- linked subscription per bundled app, on the plan named here.
ALTER TABLE offers DROP CONSTRAINT offers_kind_check;
ALTER TABLE offers ADD CONSTRAINT offers_kind_check CHECK (kind IN ('saas', 'app', 'collection'));

CREATE TABLE collection_items (
    collection_offer_id text NOT NULL REFERENCES offers(id),
    position            integer NOT NULL,
    offer_id            text NOT NULL REFERENCES offers(id),
    plan_id             text NOT NULL,
    PRIMARY KEY (collection_offer_id, position),
    FOREIGN KEY (offer_id, plan_id) REFERENCES plans(offer_id, id)
);

-- What a customer does to set up a subscription of the offer, shown to
-- partners beside "action required".
ALTER TABLE offers ADD COLUMN setup_instructions text;

-- +goose Down
ALTER TABLE offers DROP COLUMN setup_instructions;
DROP TABLE collection_items;
ALTER TABLE offers DROP CONSTRAINT offers_kind_check;
ALTER TABLE offers ADD CONSTRAINT offers_kind_check CHECK (kind IN ('saas', 'app'));
