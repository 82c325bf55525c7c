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
}

func (w *web) recordingsPage(rw http.ResponseWriter, r *http.Request, q *request) {
	p := userPage(q, "Recordings", string(menuRecordings))
	v := recordingsView{}
	if w.d.Recordings != nil {
		rs, err := w.d.Recordings.List(r.Context(), q.user)
		if err != nil {
			w.log.Error("recordings", "err", err)
		}
		v.Recordings = rs
		for _, x := range rs {
			v.Download = v.Download || x.Download
		}
	}
	p.Data = v
	w.render(rw, r, http.StatusOK, "me_recordings.html", p)
}

// myRecordingList is GET /api/v1/me/recordings.
type myRecordingList struct {
	Recordings []prov.ListedRecording `json:"recordings"`
}

func (w *web) apiMyRecordings(rw http.ResponseWriter, r *http.Request, q *request) {
	out := []prov.ListedRecording{}
	if w.d.Recordings != nil {
		rs, err := w.d.Recordings.List(r.Context(), q.user)
		if err != nil {
			w.log.Error("recordings", "err", err)
			writeError(rw, http.StatusInternalServerError, "recordings unavailable", "")
			return
		}
		out = append(out, rs...)
	}
	writeJSON(rw, http.StatusOK, myRecordingList{Recordings: out})
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
