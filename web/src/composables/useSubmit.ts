// A form's submit (login, own password): busy while it runs, and when it
// fails the words with the server's reason (errorMessage) for the form's alert.
import { ref } from 'vue'
import { errorMessage } from '@/api/request'

export function useSubmit() {
  const busy = ref(false)
  const error = ref('')
  async function run(fn: () => Promise<void>): Promise<void> {
    error.value = ''
    busy.value = true
    try {
      await fn()
    } catch (e) {
      error.value = errorMessage(e)
    } finally {
      busy.value = false
    }
  }
  return { busy, error, run }
}
