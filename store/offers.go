package store

import (
	"context"
	"fmt"

	"github.com/lib/pq"

	"github.com/partnerhub/fulfillment/domain"
)

// CatalogOffer is an offer as partners browse it: with its publisher's name
// and landing page, and every plan it is sold on.
type CatalogOffer struct {
	Offer
	PublisherName string        `db:"publisher_name"`
	LandingURL    string        `db:"landing_url"`
	Plans         []domain.Plan `db:"-"`
}

// OfferFilter selects a page of the catalog.
type OfferFilter struct {
	Limit int
	// After continues after the offer with this id (nil: first page).
	After *string
}

// OfferPage is one page of the catalog, by id.
type OfferPage struct {
	Items []CatalogOffer
	// Next is the id to continue after; nil when there is no further page.
	Next *string
}

// The catalog is ordered by id in byte order (COLLATE "C"), so pages and
// cursors do not depend on the database's locale.
const catalogOfferQuery = `
	SELECT o.id, o.publisher_id, o.name, o.kind, o.parent_offer_ids, o.setup_instructions,
		p.name AS publisher_name, p.landing_url
	FROM offers o JOIN publishers p ON p.id = o.publisher_id`

// ListOffers pages through every offer of the catalog with its plans. No
// offer is restricted to some partners: every partner may sell each of them.
func (s *Store) ListOffers(ctx context.Context, f OfferFilter) (OfferPage, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	rows := []CatalogOffer{}
	err := s.db.SelectContext(ctx, &rows, catalogOfferQuery+`
		WHERE ($1::text IS NULL OR o.id COLLATE "C" > $1::text COLLATE "C")
		ORDER BY o.id COLLATE "C" LIMIT $2`, f.After, f.Limit+1)
	if err != nil {
		return OfferPage{}, fmt.Errorf("list offers: %w", err)
	}
	page := OfferPage{}
	if len(rows) > f.Limit {
		rows = rows[:f.Limit]
		next := rows[len(rows)-1].ID
		page.Next = &next
	}
	if err := s.attachPlans(ctx, rows); err != nil {
		return OfferPage{}, err
	}
	page.Items = rows
	return page, nil
}

// CatalogOffer reads one offer of the catalog with its plans.
func (s *Store) CatalogOffer(ctx context.Context, id string) (CatalogOffer, error) {
	var o CatalogOffer
	if err := s.db.GetContext(ctx, &o, catalogOfferQuery+` WHERE o.id = $1`, id); err != nil {
		return o, notFound(err)
	}
	offers := []CatalogOffer{o}
	if err := s.attachPlans(ctx, offers); err != nil {
		return o, err
	}
	return offers[0], nil
}

// attachPlans loads the plans of every offer in one query, by plan id.
func (s *Store) attachPlans(ctx context.Context, offers []CatalogOffer) error {
	ids := make(pq.StringArray, 0, len(offers))
	byID := make(map[string]int, len(offers))
	for i := range offers {
		ids = append(ids, offers[i].ID)
		byID[offers[i].ID] = i
		offers[i].Plans = []domain.Plan{}
		if offers[i].ParentOfferIDs == nil {
			offers[i].ParentOfferIDs = pq.StringArray{}
		}
	}
	if len(offers) == 0 {
		return nil
	}
	var plans []planRow
	if err := s.db.SelectContext(ctx, &plans, `
		SELECT offer_id, id, name, term, unit_price_minor, currency, min_quantity, max_quantity,
			cancellation_window, activation_deadline, billing_frequency, billing_frequencies,
			payment_grace_period, plan_change_veto_window
		FROM plans WHERE offer_id = ANY($1) ORDER BY offer_id, id COLLATE "C"`, ids); err != nil {
		return fmt.Errorf("list plans: %w", err)
	}
	for _, p := range plans {
		o := &offers[byID[p.OfferID]]
		o.Plans = append(o.Plans, p.plan())
	}
	return nil
}
