package portal

import (
	"errors"
	"net/http"
	"strconv"

	"hotdesk/prov"
)

// The user's call recordings: a list with a player (Read) and a download
// link (Write); every replay and download is audited by prov.Recordings.

func (w *web) recordingRoutes() {
	w.handle("GET /me/recordings", roleUser, menuRecordings, w.recordingsPage)
	w.handle("GET /me/recordings/{id}/audio", roleUser, menuRecordings, w.recordingAudio)
	// The JSON twins, under the same rights.
	w.meAPIFor("GET /api/v1/me/recordings", menuRecordings, w.apiMyRecordings)
	w.meAPIFor("GET /api/v1/me/recordings/{id}/audio", menuRecordings, w.apiRecordingAudio)
}

type recordingsView struct {
	Recordings []prov.ListedRecording
	// Download: some recording may be downloaded (the column shows).
	Download bool
	// Whose: the user's rights reach others' recordings (the column shows).
	Whose              bool
	PrevHref, NextHref string
}

// recordingsPageSize is one page of the Recordings page.
const recordingsPageSize = 50

// widerRecordings reports rights beyond one's own recordings.
func widerRecordings(u prov.User) bool {
	for _, a := range []prov.Access{u.Portal.RecordingsGroup, u.Portal.RecordingsOthers, u.Portal.RecordingsAll} {
		if a == prov.AccessRead || a == prov.AccessWrite {
			return true
		}
	}
	return false
}

func (w *web) recordingsPage(rw http.ResponseWriter, r *http.Request, q *request) {
	p := userPage(q, "Recordings", string(menuRecordings))
	v := recordingsView{Whose: widerRecordings(q.user)}
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	offset = max(offset, 0)
	if w.d.Recordings != nil {
		rs, more, err := w.d.Recordings.List(r.Context(), q.user, offset, recordingsPageSize)
		if err != nil {
			w.log.Error("recordings", "err", err)
		}
		v.Recordings = rs
		for _, x := range rs {
			v.Download = v.Download || x.Download
		}
		if offset > 0 {
			v.PrevHref = "/me/recordings?offset=" + strconv.Itoa(max(offset-recordingsPageSize, 0))
		}
		if more {
			v.NextHref = "/me/recordings?offset=" + strconv.Itoa(offset+recordingsPageSize)
		}
	}
	p.Data = v
	w.render(rw, r, http.StatusOK, "me_recordings.html", p)
}

// myRecordingList is GET /api/v1/me/recordings: one page, and where the
// next starts (absent on the last).
type myRecordingList struct {
	Recordings []prov.ListedRecording `json:"recordings"`
	NextOffset *int                   `json:"next_offset,omitempty"`
}

func (w *web) apiMyRecordings(rw http.ResponseWriter, r *http.Request, q *request) {
	offset, limit := 0, recordingsPageSize
	qs := r.URL.Query()
	if s := qs.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(rw, http.StatusBadRequest, "must be a number ≥ 0", "offset")
			return
		}
		offset = n
	}
	if s := qs.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > prov.MaxRecordingsPage {
			writeError(rw, http.StatusBadRequest, "must be between 1 and "+strconv.Itoa(prov.MaxRecordingsPage), "limit")
			return
		}
		limit = n
	}
	out := myRecordingList{Recordings: []prov.ListedRecording{}}
	if w.d.Recordings != nil {
		rs, more, err := w.d.Recordings.List(r.Context(), q.user, offset, limit)
		if err != nil {
			w.log.Error("recordings", "err", err)
			writeError(rw, http.StatusInternalServerError, "recordings unavailable", "")
			return
		}
		out.Recordings = append(out.Recordings, rs...)
		if more {
			next := offset + limit
			out.NextOffset = &next
		}
	}
	writeJSON(rw, http.StatusOK, out)
}

func (w *web) recordingAudio(rw http.ResponseWriter, r *http.Request, q *request) {
	w.serveRecording(rw, r, q, func(code int, msg string) { http.Error(rw, msg, code) })
}

func (w *web) apiRecordingAudio(rw http.ResponseWriter, r *http.Request, q *request) {
	w.serveRecording(rw, r, q, func(code int, msg string) { writeError(rw, code, msg, "") })
}

// serveRecording replays (or, with ?download=1, downloads) one recording
// under the user's rights; prov.Recordings audits it.
func (w *web) serveRecording(rw http.ResponseWriter, r *http.Request, q *request, fail func(code int, msg string)) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || w.d.Recordings == nil {
		fail(http.StatusNotFound, "no such recording")
		return
	}
	download := r.URL.Query().Get("download") != ""
	rec, f, err := w.d.Recordings.Open(r.Context(), q.user, id, download, q.actor(r))
	switch {
	case errors.Is(err, prov.ErrDenied):
		fail(http.StatusForbidden, "not allowed")
		return
	case err != nil:
		fail(http.StatusNotFound, "no such recording")
		return
	}
	defer f.Close()
	rw.Header().Set("Content-Type", "audio/wav")
	if download {
		rw.Header().Set("Content-Disposition", `attachment; filename="recording-`+strconv.FormatInt(rec.ID, 10)+`.wav"`)
	}
	http.ServeContent(rw, r, "", rec.Start, f)
}
