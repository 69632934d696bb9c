/**
 * Waits for `work` at most `ms`: true if it settled in time (fulfilled or
 * rejected), false if the deadline came first. Client 1.x requests have no
 * timeout of their own, so every wait on the API that must end does it this way.
 */
export async function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
