package portal

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"hotdesk/prov"
)

// The Voicemail page (under the Profile menu and its access level): the
// user's messages, each playable in the browser (marked heard, audited)
// and deletable (audited), and the greeting upload. Read access lists
// and plays; Write deletes and uploads.

func (w *web) voicemailRoutes() {
	w.handle("GET /me/voicemail", roleUser, menuProfile, w.voicemailPage)
	w.handle("GET /me/voicemail/{id}/audio", roleUser, menuProfile, w.voicemailAudio)
	w.handle("POST /me/voicemail/{id}/delete", roleUser, menuProfile, w.voicemailDelete)
	w.handle("POST /me/voicemail/greeting", roleUser, menuProfile, w.voicemailGreeting)
}

type voicemailView struct {
	On       bool
	Messages []prov.Voicemail
	New      int
}

func (w *web) voicemailView(q *request, r *http.Request) (voicemailView, error) {
	if w.d.Voicemails == nil {
		return voicemailView{}, nil
	}
	ms, err := w.d.Voicemails.List(r.Context(), q.user.ID)
	v := voicemailView{On: true, Messages: ms}
	for _, m := range ms {
		if m.Heard.IsZero() {
			v.New++
		}
	}
	return v, err
}

func (w *web) voicemailPage(rw http.ResponseWriter, r *http.Request, q *request) {
	w.renderVoicemail(rw, r, q, http.StatusOK, nil)
}

func (w *web) renderVoicemail(rw http.ResponseWriter, r *http.Request, q *request, code int, errs map[string]string) {
	p := userPage(q, "Voicemail", "voicemail")
	v, err := w.voicemailView(q, r)
	if err != nil {
		w.log.Warn("voicemail list", "user", q.user.Username, "err", err)
		p.Message = "Your messages could not be read; see the server log."
	}
	p.Data, p.Errors = v, errs
	w.render(rw, r, code, "me_voicemail.html", p)
}

func (w *web) messageID(rw http.ResponseWriter, r *http.Request, q *request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || w.d.Voicemails == nil {
		w.forbidden(rw, r, q.s, http.StatusNotFound, "No such message.")
		return 0, false
	}
	return id, true
}

// voicemailAudio serves a message's WAV to the page's audio player.
func (w *web) voicemailAudio(rw http.ResponseWriter, r *http.Request, q *request) {
	id, ok := w.messageID(rw, r, q)
	if !ok {
		return
	}
	f, m, err := w.d.Voicemails.Open(r.Context(), q.user.ID, id, q.actor(r))
	if err != nil {
		if !errors.Is(err, prov.ErrNotFound) {
			w.log.Warn("voicemail open", "user", q.user.Username, "id", id, "err", err)
		}
		w.forbidden(rw, r, q.s, http.StatusNotFound, "No such message.")
		return
	}
	defer f.Close()
	rw.Header().Set("Content-Type", "audio/wav")
	rw.Header().Set("Content-Disposition", `inline; filename="voicemail-`+strconv.FormatInt(m.ID, 10)+`.wav"`)
	http.ServeContent(rw, r, "", m.Created, f)
}

func (w *web) voicemailDelete(rw http.ResponseWriter, r *http.Request, q *request) {
	id, ok := w.messageID(rw, r, q)
	if !ok {
		return
	}
	if err := w.d.Voicemails.DeleteFor(r.Context(), q.user.ID, id, q.actor(r)); err != nil {
		_, msg := fieldErrors(err)
		w.redirect(rw, r, q.s, "/me/voicemail", msg)
		return
	}
	w.redirect(rw, r, q.s, "/me/voicemail", "Message deleted.")
}

func (w *web) voicemailGreeting(rw http.ResponseWriter, r *http.Request, q *request) {
	if w.d.Voicemails == nil {
		w.forbidden(rw, r, q.s, http.StatusNotFound, "Voicemail is off.")
		return
	}
	f, _, err := r.FormFile("greeting")
	if err != nil {
		w.renderVoicemail(rw, r, q, http.StatusBadRequest, map[string]string{"greeting": "Choose a WAV file (8 kHz, 16-bit, mono)."})
		return
	}
	defer f.Close()
	wav, err := io.ReadAll(io.LimitReader(f, w.api.MaxBodyBytes+1))
	if err == nil && int64(len(wav)) > w.api.MaxBodyBytes {
		err = &prov.FieldError{Field: "greeting", Msg: "the file is too large"}
	}
	if err == nil {
		err = w.d.Voicemails.SetGreeting(r.Context(), q.user.ID, wav, q.actor(r))
	}
	if err != nil {
		errs, msg := fieldErrors(err)
		if errors.Is(err, prov.ErrMailboxFull) {
			errs = map[string]string{"greeting": "Your mailbox is full."}
		} else if len(errs) == 0 {
			errs = map[string]string{"greeting": msg}
		}
		w.renderVoicemail(rw, r, q, http.StatusBadRequest, errs)
		return
	}
	w.redirect(rw, r, q.s, "/me/voicemail", "Greeting saved.")
}
