package files

import (
	"context"

	"hotdesk/prov"
)

// Renderer turns a View into a vendor's files. render.Set implements it.
type Renderer interface {
	// Render returns the body of a file of kind for v (KindMaster,
	// KindDeviceConfig, KindUserConfig, KindDirectory), or ErrNotFound when
	// the vendor has no such file.
	Render(ctx context.Context, kind FileKind, v *prov.View) ([]byte, error)
	// Effective returns the merged parameters, sorted by name.
	Effective(v *prov.View) ([]prov.Param, error)
	// ContentType is the MIME type of kind's files for the device's vendor.
	ContentType(v *prov.View, kind FileKind) string
}
