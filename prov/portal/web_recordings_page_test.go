package portal

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hotdesk/prov"
)

// countingStore counts the per-user reads a recordings listing must not
// make and the listing queries it makes.
type countingStore struct {
	prov.Store
	userReads, listings atomic.Int32
}

func (c *countingStore) GetUserByID(ctx context.Context, id int64) (prov.User, error) {
	c.userReads.Add(1)
	return c.Store.GetUserByID(ctx, id)
}

func (c *countingStore) NumbersOf(ctx context.Context, id int64) ([]string, error) {
	c.userReads.Add(1)
	return c.Store.NumbersOf(ctx, id)
}

func (c *countingStore) ListRecordingsIn(ctx context.Context, sc prov.RecordingScope) ([]prov.ScopedRecording, error) {
	c.listings.Add(1)
	return c.Store.ListRecordingsIn(ctx, sc)
}

// TestRecordingsPagesAndWhose: with rights wider than their own, a user's
// Recordings page shows whose each recording is and pages through all of
// them (no cap), as does /api/v1/me/recordings with offset/limit; each
// listing is one store query, with no read per recording's user. A user
// with only their own sees no Whose column.
func TestRecordingsPagesAndWhose(t *testing.T) {
	t.Parallel()
	we := newWebEnv(t)
	ctx := context.Background()
	cs := &countingStore{Store: we.st}
	recs, err := prov.NewRecordings(prov.RecordingsConfig{Dir: t.TempDir()}, cs, nil, slog.New(slog.DiscardHandler), we.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	we.web.d.Recordings = recs // before any request
	alice := we.portalUser("alice", "1001")
	bob := we.portalUser("bob", "1002")
	carol := we.portalUser("carol", "1003")
	start := time.Now().Add(-time.Hour)
	for i := range 120 {
		u := bob
		if i%2 == 1 {
			u = carol
		}
		r := prov.Recording{UserID: u.ID, CallID: "c", Peer: "9000", Start: start.Add(time.Duration(i) * time.Second),
			DurationMS: 1000, Bytes: 9, File: "r" + strings.Repeat("0", 4-len(itoa(i))) + itoa(i) + ".wav"}
		if err := we.st.AddRecording(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	alice.Portal.RecordingsAll = prov.AccessRead
	if err := we.st.UpdateUser(ctx, &alice); err != nil {
		t.Fatal(err)
	}
	u := we.browser()
	u.mustSignIn("alice", "password-alice", "/me/")

	p := u.get("/me/recordings")
	if p.code != http.StatusOK || !strings.Contains(p.body, "<th>Whose</th>") || strings.Count(p.body, `<td class="whose">`) != 50 ||
		!strings.Contains(p.body, `<td class="whose">Fcarol Lcarol</td>`) || !strings.Contains(p.body, `<td class="whose">Fbob Lbob</td>`) ||
		!strings.Contains(p.body, `href="/me/recordings?offset=50">Next`) || strings.Contains(p.body, ">Previous<") {
		t.Fatalf("first page = %d: %s", p.code, excerpt(p.body))
	}
	p = u.get("/me/recordings?offset=100")
	if n := strings.Count(p.body, `<td class="whose">`); n != 20 || !strings.Contains(p.body, `href="/me/recordings?offset=50">Previous`) ||
		strings.Contains(p.body, ">Next<") {
		t.Fatalf("last page: %d rows: %s", n, excerpt(p.body))
	}

	cs.userReads.Store(0)
	cs.listings.Store(0)
	var seen []prov.ListedRecording
	offset := 0
	for range 5 {
		var l myRecordingList
		p := u.get("/api/v1/me/recordings?limit=50&offset=" + itoa(offset))
		if p.code != http.StatusOK || json.Unmarshal([]byte(p.body), &l) != nil {
			t.Fatalf("GET /api/v1/me/recordings = %d %s", p.code, p.body)
		}
		seen = append(seen, l.Recordings...)
		if l.NextOffset == nil {
			break
		}
		offset = *l.NextOffset
	}
	if len(seen) != 120 || seen[0].Owner != "bob" && seen[0].Owner != "carol" || seen[0].OwnerName == "" ||
		!seen[0].Start.After(seen[119].Start) {
		t.Fatalf("paged through %d recordings; first %+v", len(seen), seen[0])
	}
	if n, l := cs.userReads.Load(), cs.listings.Load(); n != 0 || l != 3 {
		t.Fatalf("three pages read users %d times and listed %d times, want 0 and 3", n, l)
	}
	for _, bad := range []string{"?limit=0", "?limit=201", "?offset=-1", "?offset=x"} {
		if p := u.get("/api/v1/me/recordings" + bad); p.code != http.StatusBadRequest {
			t.Errorf("GET /api/v1/me/recordings%s = %d", bad, p.code)
		}
	}

	// Own only: no Whose column.
	bob.Portal.Recordings = prov.AccessRead
	if err := we.st.UpdateUser(ctx, &bob); err != nil {
		t.Fatal(err)
	}
	b := we.browser()
	b.mustSignIn("bob", "password-bob", "/me/")
	if p := b.get("/me/recordings"); p.code != http.StatusOK || strings.Contains(p.body, "Whose") ||
		strings.Count(p.body, "<audio") != 50 {
		t.Fatalf("bob's own recordings page = %d: %s", p.code, excerpt(p.body))
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
