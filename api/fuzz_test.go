package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// The decoders face the internet: whatever the bytes, they must not panic,
// every refusal must be a 4xx Problem (never a bare error, which the handlers
// would answer with 500), and whatever they accept must already satisfy the
// shape rules the handlers and the database rely on. Seed corpora live in
// testdata/fuzz/<FuzzName>/ and run with every `go test ./api`.

// requireClientProblem fails unless err is a *Problem with a 4xx status.
func requireClientProblem(t *testing.T, err error, input any) {
	t.Helper()
	input = short(input)
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("rejection of %q is %T (%v), not a *Problem", input, err, err)
	}
	if p.Status < 400 || p.Status > 499 {
		t.Fatalf("rejection of %q has status %d, want 4xx: %v", input, p.Status, p)
	}
	if p.Code == "" || !strings.HasPrefix(p.Type, ProblemTypeBase) || p.Title == "" {
		t.Fatalf("rejection of %q is an incomplete problem: %+v", input, p)
	}
}

// short keeps failure messages readable.
func short(input any) string {
	s := fmt.Sprintf("%s", input)
	if len(s) > 200 {
		return fmt.Sprintf("%.200s… (%d bytes)", s, len(s))
	}
	return s
}

// storableText is what PostgreSQL's text columns and the workflow's history
// take: valid UTF-8 without NUL.
func storableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

func checkOptionalText(t *testing.T, field string, v *string, limit int) {
	t.Helper()
	if v == nil {
		return
	}
	if n := utf8.RuneCountInString(*v); n > limit {
		t.Fatalf("accepted %s of %d runes (limit %d)", field, n, limit)
	}
	if !storableText(*v) {
		t.Fatalf("accepted %s %q that the database cannot store", field, *v)
	}
}

func purchaseSeeds() []string {
	return []string{
		`{"customer_id":"woodgrove","offer_id":"analytics","plan_id":"annual","quantity":5}`,
		`{"customer_id":"woodgrove","offer_id":"analytics","plan_id":"annual","quantity":5,"nickname":"HQ","auto_renew":false,"reseller_partner_id":"r-1","parent_subscription_id":"sub_1"}`,
		`{"customer_id":"woodgrove","offer_id":"analytics","plan_id":"annual","quantity":5,"extra":1}`,
		`{"customer_id":"woodgrove","offer_id":"analytics","plan_id":"annual","quantity":5} {}`,
		`{"customer_id":"woodgrove","offer_id":"analytics","plan_id":"annual","quantity":"5"}`,
		`{"customer_id":"woodgrove","offer_id":"analytics","plan_id":"annual","quantity":1e400}`,
		`{"customer_id":"woodgrove","offer_id":"analytics","plan_id":"annual","quantity":99999999999999999999}`,
		`{"customer_id":"woodgrove","offer_id":"analytics","plan_id":"annual","quantity":5,"nickname":"a\u0000b"}`,
		`{"customer_id":{"id":"woodgrove"},"offer_id":["analytics"],"plan_id":"annual","quantity":5}`,
		`{"customer_id":"","offer_id":"analytics","plan_id":"annual","quantity":5}`,
		`{"customer_id":"woodgrove","offer_id":"analytics","plan_id":"annual","quantity":5,"nickname":"` + strings.Repeat("é", 257) + `"}`,
		"{\"customer_id\":\"wood\xffgrove\",\"offer_id\":\"analytics\",\"plan_id\":\"annual\",\"quantity\":5}",
		`null`, `[]`, `"x"`, ``, `{`,
	}
}

func FuzzDecodePurchase(f *testing.F) {
	for _, s := range purchaseSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodePurchase(body)
		if err != nil {
			requireClientProblem(t, err, body)
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted a body that is not UTF-8: %q", body)
		}
		for field, v := range map[string]string{"customer_id": req.CustomerID, "offer_id": req.OfferID, "plan_id": req.PlanID} {
			if v == "" || len(v) > maxID || !storableText(v) {
				t.Fatalf("accepted %s %q", field, v)
			}
		}
		if req.Quantity == nil {
			t.Fatalf("accepted a purchase without quantity: %q", body)
		}
		checkOptionalText(t, "nickname", req.Nickname, maxNickname)
		checkOptionalText(t, "reseller_partner_id", req.ResellerPartnerID, maxResellerID)
		if p := req.ParentSubscriptionID; p != nil && (*p == "" || len(*p) > maxID || !storableText(*p)) {
			t.Fatalf("accepted parent_subscription_id %q", *p)
		}
		// What was accepted survives the canonical form the idempotency hash uses.
		canonical, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodePurchase(canonical)
		if err != nil {
			t.Fatalf("canonical form %s of an accepted purchase is rejected: %v", canonical, err)
		}
		if again2, _ := json.Marshal(again); string(again2) != string(canonical) {
			t.Fatalf("canonical form is not stable: %s then %s", canonical, again2)
		}
	})
}

func patchSeeds() []string {
	return []string{
		`{"nickname":"HQ"}`,
		`{"nickname":null}`,
		`{"quantity":7}`,
		`{"auto_renew":false}`,
		`{"reseller_partner_id":"r-9","nickname":"x","quantity":2,"auto_renew":true}`,
		`{}`,
		`{"quantity":null}`,
		`{"auto_renew":null}`,
		`{"quantity":"7"}`,
		`{"quantity":1.5}`,
		`{"quantity":-99999999999999999999999}`,
		`{"auto_renew":"yes"}`,
		`{"nickname":"` + strings.Repeat("n", 257) + `"}`,
		`{"nickname":{"first":"a"}}`,
		`{"nickname":"HQ","status":"active"}`,
		`{"nickname":"HQ"}[]`,
		`{"nickname":"a\u0000"}`,
		"{\"nickname\":\"\xc3\x28\"}",
		`null`, `true`, ``,
	}
}

func FuzzDecodePatch(f *testing.F) {
	for _, s := range patchSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodePatch(body)
		if err != nil {
			requireClientProblem(t, err, body)
			return
		}
		if !req.Nickname.Set && !req.Quantity.Set && !req.AutoRenew.Set && !req.ResellerPartnerID.Set {
			t.Fatalf("accepted a PATCH that changes nothing: %q", body)
		}
		if req.Quantity.Null || req.AutoRenew.Null {
			t.Fatalf("accepted a null quantity or auto_renew: %q", body)
		}
		if req.Nickname.Set && !req.Nickname.Null {
			checkOptionalText(t, "nickname", &req.Nickname.Value, maxNickname)
		}
		if req.ResellerPartnerID.Set && !req.ResellerPartnerID.Null {
			checkOptionalText(t, "reseller_partner_id", &req.ResellerPartnerID.Value, maxResellerID)
		}
		// The workflow message carries exactly what was asked.
		msg := req.changeRequest("patch:x", agentActor(testAgent))
		if (msg.Quantity != nil) != req.Quantity.Set || (msg.AutoRenew != nil) != req.AutoRenew.Set {
			t.Fatalf("change request %+v does not match %q", msg, body)
		}
		if msg.ClearNickname != (req.Nickname.Set && req.Nickname.Null) || (msg.Nickname != nil) != (req.Nickname.Set && !req.Nickname.Null) {
			t.Fatalf("nickname change %+v does not match %q", msg, body)
		}
	})
}

func signatureSeeds() []string {
	return []string{
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,bm9wZQ==",
		"v1a,abc v2,def",
		"",
		"   ",
		"v1,",
		",abc",
		"v1",
		"v1,abc,def",
		"v1,a\tv1,b",
		"\xff\xfe,\x00",
		strings.Repeat("v1,AAAA ", 600),
	}
}

func FuzzParseSignatureHeader(f *testing.F) {
	for _, s := range signatureSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		sigs, err := ParseSignatureHeader(header)
		if err != nil {
			requireClientProblem(t, err, header)
			if sigs != nil {
				t.Fatalf("rejection of %q returned signatures %v", header, sigs)
			}
			return
		}
		if len(header) > 4096 || strings.TrimSpace(header) == "" {
			t.Fatalf("accepted a header of %d bytes: %q", len(header), header)
		}
		if len(sigs) == 0 || len(sigs) > len(strings.Fields(header)) {
			t.Fatalf("accepted %q with %d signatures", header, len(sigs))
		}
		for _, s := range sigs {
			// Each part on its own: bytes of invalid UTF-8 split by the comma
			// ("\xe2" "," "\x80\x83") would read as a space once joined.
			if s.Version == "" || s.Value == "" || strings.Contains(s.Version, ",") ||
				strings.IndexFunc(s.Version, unicode.IsSpace) >= 0 || strings.IndexFunc(s.Value, unicode.IsSpace) >= 0 {
				t.Fatalf("accepted a malformed entry %+v of %q", s, header)
			}
			if !strings.Contains(header, s.Version+","+s.Value) {
				t.Fatalf("entry %+v is not in %q", s, header)
			}
		}
	})
}
