// PyTorch checkpoints: the zip container (torch >= 1.6) and the legacy stream (torch < 1.6).
#include "pickle.h"

int pth_zip_load(ckpt *ck, const unsigned char *buf, size_t len, err *e) {
    (void)buf; (void)len;
    return err_set(e, OODSEG_E_FORMAT, "%s: PyTorch zip checkpoints are not supported yet", ck->path);
}

int pth_legacy_load(ckpt *ck, const unsigned char *buf, size_t len, err *e) {
    (void)buf; (void)len;
    return err_set(e, OODSEG_E_FORMAT, "%s: legacy PyTorch checkpoints are not supported yet", ck->path);
}
