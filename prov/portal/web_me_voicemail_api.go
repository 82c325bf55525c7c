package portal

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"hotdesk/prov"
)

// The Voicemail page's JSON twin under /api/v1/me/voicemail: the same
// menu access (Read lists and plays, Write marks, deletes and replaces the
// greeting) and the same audit, through prov.Voicemails.

func (w *web) voicemailAPIRoutes() {
	w.meAPIFor("GET /api/v1/me/voicemail", menuProfile, w.apiMyVoicemail)
	w.meAPIFor("GET /api/v1/me/voicemail/{id}/audio", menuProfile, w.apiVoicemailAudio)
	w.meAPIFor("POST /api/v1/me/voicemail/{id}/heard", menuProfile, w.apiVoicemailHeard)
	w.meAPIFor("DELETE /api/v1/me/voicemail/{id}", menuProfile, w.apiVoicemailDelete)
	w.meAPIFor("PUT /api/v1/me/voicemail/greeting", menuProfile, w.apiGreetingPut)
	w.meAPIFor("DELETE /api/v1/me/voicemail/greeting", menuProfile, w.apiGreetingDelete)
}

// myVoicemail is one message as the API shows it (never its path).
type myVoicemail struct {
	ID         int64      `json:"id"`
	From       string     `json:"from"`
	DurationMS int64      `json:"duration_ms"`
	Bytes      int64      `json:"bytes"`
	Created    time.Time  `json:"created"`
	Heard      bool       `json:"heard"`
	HeardAt    *time.Time `json:"heard_at,omitempty"`
}

type myVoicemailList struct {
	// On: voicemail is enabled on this server.
	On       bool          `json:"on"`
	New      int           `json:"new"`
	Greeting bool          `json:"greeting"`
	Messages []myVoicemail `json:"messages"`
	// CSRFToken goes in X-CSRF-Token on POST, PUT and DELETE.
	CSRFToken string `json:"csrf_token"`
}

func (w *web) apiMyVoicemail(rw http.ResponseWriter, r *http.Request, q *request) {
	out := myVoicemailList{Messages: []myVoicemail{}, CSRFToken: q.s.CSRF}
	if vms := w.d.Voicemails; vms != nil {
		ms, err := vms.List(r.Context(), q.user.ID)
		if err != nil {
			w.log.Error("voicemail list", "user", q.user.Username, "err", err)
			writeError(rw, http.StatusInternalServerError, "voicemail unavailable", "")
			return
		}
		out.On, out.Greeting = true, vms.HasGreeting(r.Context(), q.user.ID)
		for _, m := range ms {
			v := myVoicemail{ID: m.ID, From: m.From, DurationMS: m.Duration.Milliseconds(), Bytes: m.Size, Created: m.Created,
				Heard: !m.Heard.IsZero()}
			if v.Heard {
				at := m.Heard
				v.HeardAt = &at
			} else {
				out.New++
			}
			out.Messages = append(out.Messages, v)
		}
	}
	writeJSON(rw, http.StatusOK, out)
}

// apiMessageID is the path's message id; false (answered 404) when it is
// not a number or voicemail is off.
func (w *web) apiMessageID(rw http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || w.d.Voicemails == nil {
		writeError(rw, http.StatusNotFound, "no such message", "")
		return 0, false
	}
	return id, true
}

// voicemailAPIError answers a prov.Voicemails error.
func (w *web) voicemailAPIError(rw http.ResponseWriter, q *request, err error) {
	var fe *prov.FieldError
	switch {
	case errors.Is(err, prov.ErrNotFound):
		writeError(rw, http.StatusNotFound, "no such message", "")
	case errors.Is(err, prov.ErrMailboxFull):
		writeError(rw, http.StatusConflict, "your mailbox is full", "greeting")
	case errors.As(err, &fe):
		writeError(rw, http.StatusBadRequest, fe.Msg, fe.Field)
	default:
		w.log.Error("voicemail", "user", q.user.Username, "err", err)
		writeError(rw, http.StatusInternalServerError, "internal error", "")
	}
}

func (w *web) apiVoicemailAudio(rw http.ResponseWriter, r *http.Request, q *request) {
	id, ok := w.apiMessageID(rw, r)
	if !ok {
		return
	}
	f, m, err := w.d.Voicemails.Open(r.Context(), q.user.ID, id, q.actor(r))
	if err != nil {
		w.voicemailAPIError(rw, q, err)
		return
	}
	defer f.Close()
	rw.Header().Set("Content-Type", "audio/wav")
	rw.Header().Set("Content-Disposition", `attachment; filename="voicemail-`+strconv.FormatInt(m.ID, 10)+`.wav"`)
	http.ServeContent(rw, r, "", m.Created, f)
}

func (w *web) apiVoicemailHeard(rw http.ResponseWriter, r *http.Request, q *request) {
	id, ok := w.apiMessageID(rw, r)
	if !ok {
		return
	}
	if err := w.d.Voicemails.MarkHeard(r.Context(), q.user.ID, id, q.actor(r)); err != nil {
		w.voicemailAPIError(rw, q, err)
		return
	}
	rw.WriteHeader(http.StatusNoContent)
}

func (w *web) apiVoicemailDelete(rw http.ResponseWriter, r *http.Request, q *request) {
	id, ok := w.apiMessageID(rw, r)
	if !ok {
		return
	}
	if err := w.d.Voicemails.DeleteFor(r.Context(), q.user.ID, id, q.actor(r)); err != nil {
		w.voicemailAPIError(rw, q, err)
		return
	}
	rw.WriteHeader(http.StatusNoContent)
}

// apiGreetingPut replaces the greeting with the body, an 8 kHz 16-bit
// mono WAV (meAPIFor bounds the body).
func (w *web) apiGreetingPut(rw http.ResponseWriter, r *http.Request, q *request) {
	if w.d.Voicemails == nil {
		writeError(rw, http.StatusNotFound, "voicemail is off", "")
		return
	}
	wav, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(rw, http.StatusRequestEntityTooLarge, "the greeting is too large", "greeting")
			return
		}
		writeError(rw, http.StatusBadRequest, "the greeting could not be read", "greeting")
		return
	}
	if err := w.d.Voicemails.SetGreeting(r.Context(), q.user.ID, wav, q.actor(r)); err != nil {
		w.voicemailAPIError(rw, q, err)
		return
	}
	rw.WriteHeader(http.StatusNoContent)
}

func (w *web) apiGreetingDelete(rw http.ResponseWriter, r *http.Request, q *request) {
	if w.d.Voicemails == nil {
		writeError(rw, http.StatusNotFound, "voicemail is off", "")
		return
	}
	if err := w.d.Voicemails.DeleteGreeting(r.Context(), q.user.ID, q.actor(r)); err != nil {
		if errors.Is(err, prov.ErrNotFound) {
			writeError(rw, http.StatusNotFound, "no greeting", "")
			return
		}
		w.voicemailAPIError(rw, q, err)
		return
	}
	rw.WriteHeader(http.StatusNoContent)
}
