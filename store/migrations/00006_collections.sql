-- +goose Up
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

-- +goose Down
DROP TABLE collection_items;
ALTER TABLE offers DROP CONSTRAINT offers_kind_check;
ALTER TABLE offers ADD CONSTRAINT offers_kind_check CHECK (kind IN ('saas', 'app'));
