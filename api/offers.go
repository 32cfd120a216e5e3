package api

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/wire"
)

// listOffers pages through the catalog by offer id. Every partner may sell
// every offer: the catalog has no per-partner restrictions.
func (s *Server) listOffers(c *gin.Context) {
	f := store.OfferFilter{}
	limit, err := queryLimit(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	f.Limit = limit
	if v := c.Query("cursor"); v != "" {
		after, err := decodeOfferCursor(v)
		if err != nil {
			writeProblem(c, problem(CodeInvalidRequest, "cursor is not one this API returned"))
			return
		}
		f.After = &after
	}
	page, err := s.Store.ListOffers(c.Request.Context(), f)
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	items := make([]wire.Offer, 0, len(page.Items))
	for _, o := range page.Items {
		items = append(items, offerView(o))
	}
	var next *string
	if page.Next != nil {
		cur := encodeOfferCursor(*page.Next)
		next = &cur
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "next_cursor": next})
}

func (s *Server) getOffer(c *gin.Context) {
	id := c.Param("id")
	notFound := problem(CodeNotFound, "no offer "+strconv.Quote(id))
	if !lookupable(id) {
		writeProblem(c, notFound)
		return
	}
	o, err := s.Store.CatalogOffer(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(c, notFound)
		return
	} else if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	c.JSON(http.StatusOK, offerView(o))
}

func offerView(o store.CatalogOffer) wire.Offer {
	plans := make([]wire.Plan, 0, len(o.Plans))
	for _, p := range o.Plans {
		plans = append(plans, wire.Plan{
			ID: p.ID, Name: p.Name, UnitPriceMinor: p.UnitPriceMinor, Currency: p.Currency,
			Term: p.Term, BillingFrequency: p.Frequency(), BillingFrequencies: p.Frequencies(),
			MinQuantity: p.MinQuantity, MaxQuantity: p.MaxQuantity,
			CancellationWindow: p.CancellationWindow, ActivationDeadline: p.ActivationDeadline,
			PlanChangeVetoWindow: p.VetoWindow(), PaymentGracePeriod: p.GracePeriod(),
		})
	}
	parents := append([]string{}, o.ParentOfferIDs...)
	return wire.Offer{
		ID: o.ID, Name: o.Name, Kind: o.Kind, PublisherID: o.PublisherID, PublisherName: o.PublisherName,
		ParentOfferIDs: parents, LandingURL: o.LandingURL, SetupInstructions: o.SetupInstructions, Plans: plans,
	}
}

// queryLimit reads the page size: 1–100, default 50.
func queryLimit(c *gin.Context) (int, error) {
	v, ok := c.GetQuery("limit")
	if !ok {
		return 50, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 100 {
		return 0, problem(CodeInvalidRequest, "limit must be an integer from 1 to 100")
	}
	return n, nil
}

// An offer cursor names the last offer id of the page; like subscription
// cursors it is opaque to clients (and one kind is refused as the other).
func encodeOfferCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + id))
}

func decodeOfferCursor(cursor string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || !strings.HasPrefix(string(raw), "o:") || !lookupable(string(raw[2:])) {
		return "", errors.New("bad cursor")
	}
	return string(raw[2:]), nil
}
