// Package files is the provisioning file namespace, served identically
// over HTTP(S) (prov/provhttp) and TFTP (daemon's adapter to tftp): the
// names phones ask for and what each vendor means by them, the device a
// request comes from (enrolment by policy), the secure bootstrap (what a
// device may see before and after it authenticates), the rendered-files
// cache, stored uploads with their parsing (Polycom .cfg overrides and
// directories, key = value phone settings) and the phone-page tokens.
//
// Renderers (prov/render) implement Renderer over prov's vendor-neutral
// View. The package reads the model through prov.Store and prov.Events and
// tells the desk services of fetches through Desk; prov never imports it.
// Its Cache is built before prov.New, which subscribes it among its rules
// (see prov's doc), and serves prov.Sessions' reads of a device's active
// session on the registrar's event path too (prov.ActiveCache).
//
// Writes on a boot storm's path are grouped into shared transactions, each
// request waiting for its own committed result (enrolment, the credentials'
// hand-out mark), so a crash loses nothing a phone was answered about; the
// last-seen notes alone are written behind (seen.go).
package files
