// The tensor list and the error helpers.
#include "test.h"
#include "../nn/tensor.h"
#include <string.h>

TEST(tensor_list_add_get_remove) {
    tensor_list l = {0};
    err e = {0};
    int64_t s[3] = {2, 3, 4};
    tensor *t = tl_add(&l, "a", 3, s, &e);
    REQUIRE(t != NULL, "%s", e.msg);
    CHECK(tensor_numel(t) == 24);
    float v[2] = {1.5f, -2};
    int64_t s1[1] = {2};
    REQUIRE(tl_add_copy(&l, "b", 1, s1, v, &e) != NULL);
    CHECK(tl_get(&l, "b")->data[1] == -2.0f);
    CHECK(tl_get(&l, "a")->data[23] == 0.0f);
    tl_remove(&l, "a");
    CHECK(tl_get(&l, "a") == NULL && l.n == 1);
    int64_t bad[5] = {1, 1, 1, 1, 1};
    CHECK(tl_add(&l, "c", 5, bad, &e) == NULL && e.code == OODSEG_E_INTERNAL);
    tl_free(&l);
}

TEST(tensor_list_add_uninit) {
    tensor_list l = {0};
    err e = {0};
    int64_t s[4] = {1, 2, 3, 5};
    tensor *t = tl_add_uninit(&l, "logits", 4, s, &e);
    REQUIRE(t != NULL, "%s", e.msg);
    CHECK(tensor_numel(t) == 30 && t->owned && t->device == NN_DEVICE_CPU && l.n == 1);
    for (int i = 0; i < 30; i++) t->data[i] = (float)i;   // the whole tensor is writable
    CHECK(tl_get(&l, "logits")->data[29] == 29.0f);
    int64_t bad[1] = {1};
    CHECK(tl_add_uninit(&l, "x", 0, bad, &e) == NULL && e.code == OODSEG_E_INTERNAL && l.n == 1);
    tl_free(&l);
}

TEST(err_prefix_keeps_message) {
    err e = {0};
    err_set(&e, OODSEG_E_FORMAT, "truncated at byte %d", 12);
    err_prefix(&e, "model.pth: ");
    CHECK(strcmp(e.msg, "model.pth: truncated at byte 12") == 0, "%s", e.msg);
    CHECK(e.code == OODSEG_E_FORMAT);
}

int main(int argc, char **argv) {
    (void)argc;
    RUN(tensor_list_add_get_remove);
    RUN(tensor_list_add_uninit);
    RUN(err_prefix_keeps_message);
    return t_finish(argv[0]);
}
