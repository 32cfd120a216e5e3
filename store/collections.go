package store

import (
	"context"

	"github.com/jmoiron/sqlx"
)

// CollectionItem is one app a collection offer bundles, on one of its plans.
type CollectionItem struct {
	OfferID string `db:"offer_id" json:"offer_id"`
	PlanID  string `db:"plan_id" json:"plan_id"`
}

// SetCollectionItems replaces what a collection offer bundles (seed).
func (s *Store) SetCollectionItems(ctx context.Context, collectionOfferID string, items []CollectionItem) error {
	return s.tx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM collection_items WHERE collection_offer_id = $1`, collectionOfferID); err != nil {
			return wrap(err, "clear collection %s", collectionOfferID)
		}
		for i, it := range items {
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO collection_items (collection_offer_id, position, offer_id, plan_id) VALUES ($1,$2,$3,$4)`,
				collectionOfferID, i+1, it.OfferID, it.PlanID); err != nil {
				return wrap(err, "bundle %s/%s in %s", it.OfferID, it.PlanID, collectionOfferID)
			}
		}
		return nil
	})
}

// CollectionItems lists what a collection offer bundles, in order.
func (s *Store) CollectionItems(ctx context.Context, collectionOfferID string) ([]CollectionItem, error) {
	items := []CollectionItem{}
	err := s.db.SelectContext(ctx, &items, `
		SELECT offer_id, plan_id FROM collection_items WHERE collection_offer_id = $1 ORDER BY position`, collectionOfferID)
	return items, wrap(err, "collection %s", collectionOfferID)
}

// SetSetupInstructions records what a customer does to set up a
// subscription of the offer (seed); nil clears them.
func (s *Store) SetSetupInstructions(ctx context.Context, offerID string, text *string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE offers SET setup_instructions = $2 WHERE id = $1`, offerID, text)
	return wrap(err, "set-up instructions of %s", offerID)
}
