package portal

import (
	"net/http"
	"sort"
	"time"

	"hotdesk/prov"
)

// Historical call reporting (seed 002): a user the admin gave the right
// sees a summary of the recent calls of all users, and the calls.

// reportingDays is the period the summary covers; reportingCalls bounds
// the calls read for it.
const (
	reportingDays  = 7
	reportingCalls = 2000
)

// reportRow is one caller's line of the summary.
type reportRow struct {
	From                       string
	Made, Answered, Unanswered int
	Talk                       time.Duration
}

type reportingView struct {
	Since  time.Time
	Rows   []reportRow
	Recent []prov.CallRecord
}

func (w *web) reportingPage(rw http.ResponseWriter, r *http.Request, q *request) {
	cs, err := w.d.Store.ListCallRecords(r.Context(), 0, reportingCalls)
	if err != nil {
		w.serverError(rw, r, q, err)
		return
	}
	v := summarize(cs, w.now().Add(-reportingDays*24*time.Hour))
	p := userPage(q, "Call reporting", string(menuReporting))
	p.Data = v
	w.render(rw, r, http.StatusOK, "me_reporting.html", p)
}

// summarize counts the calls started since, per caller, busiest first,
// and keeps the 100 most recent.
func summarize(cs []prov.CallRecord, since time.Time) reportingView {
	v := reportingView{Since: since}
	by := map[string]*reportRow{}
	for _, c := range cs {
		if c.Start.Before(since) {
			continue
		}
		row := by[c.From]
		if row == nil {
			row = &reportRow{From: c.From}
			by[c.From] = row
		}
		row.Made++
		if c.Answer.IsZero() {
			row.Unanswered++
		} else {
			row.Answered++
			if c.End.After(c.Answer) {
				row.Talk += c.End.Sub(c.Answer).Round(time.Second)
			}
		}
		if len(v.Recent) < 100 {
			v.Recent = append(v.Recent, c)
		}
	}
	for _, row := range by {
		v.Rows = append(v.Rows, *row)
	}
	sort.Slice(v.Rows, func(i, j int) bool {
		if v.Rows[i].Made != v.Rows[j].Made {
			return v.Rows[i].Made > v.Rows[j].Made
		}
		return v.Rows[i].From < v.Rows[j].From
	})
	return v
}

// companyView is the company directory as the user's scope shows it.
type companyView struct {
	Entries []prov.CompanyEntry
	Scope   string
}

// companyPage is the company directory: colleagues and their numbers,
// limited by the user's directory scope (all, or one site).
func (w *web) companyPage(rw http.ResponseWriter, r *http.Request, q *request) {
	es, err := prov.CompanyDirectory(r.Context(), w.d.Store, q.user, r.URL.Query().Get("q"))
	if err != nil {
		w.serverError(rw, r, q, err)
		return
	}
	p := userPage(q, "Company directory", "company")
	p.Form = map[string]string{"q": r.URL.Query().Get("q")}
	p.Data = companyView{Entries: es, Scope: q.user.DirectoryScope}
	w.render(rw, r, http.StatusOK, "me_company.html", p)
}
