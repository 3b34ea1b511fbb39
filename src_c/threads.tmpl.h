/* The drivers' parallel loop, written once on TYPE (see threads.c).
 * Documented in fastconv.h.  Each loop is a worksharing loop with its
 * implicit barrier, so a loop's items all finish before the next loop
 * starts; a failure status does not stop the other items (no thread can
 * stop the others), the worst one is returned once all have run. */

int CAT(fc_run_loops_, TYPE)(const fc_loop *loops, ptrdiff_t n, int threads,
                             TYPE *work, ptrdiff_t work_stride)
{
    int worst = FC_OK;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(min : worst)
#else
    (void)threads;
#endif
    {
        TYPE *const mine = work ? work + fc_thread() * work_stride : NULL;
        for (ptrdiff_t k = 0; k < n; ++k) {
            /* back to the item's own type (fc_fn only carries it) */
            const CAT(fc_item_, TYPE) run = (CAT(fc_item_, TYPE))loops[k].run;
            const void *const ctx = loops[k].ctx;
            const ptrdiff_t arg = loops[k].arg, items = loops[k].items;
            if (loops[k].dynamic) {
#ifdef _OPENMP
#pragma omp for schedule(dynamic)
#endif
                for (ptrdiff_t i = 0; i < items; ++i) {
                    const int status = run(ctx, arg, i, mine);
                    if (status < worst) worst = status;
                }
            } else {
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
                for (ptrdiff_t i = 0; i < items; ++i) {
                    const int status = run(ctx, arg, i, mine);
                    if (status < worst) worst = status;
                }
            }
        }
    }
    return worst;
}
